"""Backfills: resolving what to materialize, planning runs, and reacting to their outcomes."""

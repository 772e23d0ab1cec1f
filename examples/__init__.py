"""The backfill guide's examples, ported from Dagster by changing the import only."""

"""Runs: the queue that launches them, the reports that move them, the monitor that watches them."""

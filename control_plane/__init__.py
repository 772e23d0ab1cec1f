"""The control plane: stores backfills and runs, plans backfills into runs, launches and monitors them."""

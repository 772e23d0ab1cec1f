"""Generated from protos/partita/common by scripts/gen_protos.py; do not edit."""

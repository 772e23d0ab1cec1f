"""Generated from protos/partita/common/v1 by scripts/gen_protos.py; do not edit."""

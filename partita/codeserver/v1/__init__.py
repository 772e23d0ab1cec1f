"""Generated from protos/partita/codeserver/v1 by scripts/gen_protos.py; do not edit."""

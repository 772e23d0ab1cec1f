"""Generated from protos/partita/codeserver by scripts/gen_protos.py; do not edit."""

"""Generated from protos/partita/controlplane/v1 by scripts/gen_protos.py; do not edit."""

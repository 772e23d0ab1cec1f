"""Generated from protos/partita/controlplane by scripts/gen_protos.py; do not edit."""

"""Partita's command line and its generated wire contracts (``partita.<service>.v1``)."""

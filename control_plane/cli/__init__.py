"""The ``partita`` commands that talk to the control plane: backfill, runs, locations, asset, sensor,
schedule, tokens, whoami, audit.

Each module adds one command group with ``add_parser(subparsers)``; ``add_parsers`` adds them all.
"""

from __future__ import annotations

from control_plane.cli import assets, audit, automation, backfills, locations, runs, tokens
from control_plane.cli.command import Subparsers


def add_parsers(subparsers: Subparsers) -> None:
    for group in (backfills, runs, locations, assets, automation, tokens, audit):
        group.add_parser(subparsers)


__all__ = ["add_parsers"]

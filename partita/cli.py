"""The ``partita`` command: one entry point whose subcommands live beside the code they drive."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partita", description="Partitioned data and backfills.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Imported here so `partita --help` stays fast and the user-code image needs only what it runs.
    from code_server.run_worker import cli as run_worker_cli
    from code_server.server import cli as code_server_cli
    from control_plane.cli import add_parsers as add_client_parsers
    from control_plane.cli import dev, serve

    dev.add_parser(subparsers)
    serve.add_parser(subparsers)
    code_server_cli.add_parser(subparsers)
    run_worker_cli.add_parser(subparsers)
    add_client_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

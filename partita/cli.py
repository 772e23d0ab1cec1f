"""The ``partita`` command: one entry point whose subcommands live beside the code they drive."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

#: Commands that run in the user-code image; they must not pay for importing the control plane.
_USER_CODE_COMMANDS = frozenset({"code-server", "execute-run"})


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; given the command about to run, only the modules it needs are imported."""
    parser = argparse.ArgumentParser(prog="partita", description="Partitioned data and backfills.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from code_server.run_worker import cli as run_worker_cli
    from code_server.server import cli as code_server_cli

    if command in _USER_CODE_COMMANDS:
        code_server_cli.add_parser(subparsers)
        run_worker_cli.add_parser(subparsers)
        return parser
    from control_plane.cli import add_parsers as add_client_parsers
    from control_plane.cli import dev, serve

    dev.add_parser(subparsers)
    serve.add_parser(subparsers)
    code_server_cli.add_parser(subparsers)
    run_worker_cli.add_parser(subparsers)
    add_client_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    args = build_parser(command).parse_args(arguments)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""What every client command shares: where the control plane is, and how failures become exit codes.

Exit codes: 0 success; 1 a failure reported by (or reaching) the control plane; 2 bad arguments,
whether argparse, this CLI or the control plane (INVALID_ARGUMENT) finds them wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeAlias

from code_server.asset_key import AssetKey
from code_server.errors import PartitaError
from code_server.tls_flags import add_client_tls_arguments, client_tls_from_args
from control_plane.client import (
    DEFAULT_ADDRESS,
    ControlPlaneClient,
    ControlPlaneClientError,
    InvalidArgumentError,
)
from control_plane.client_auth import TOKEN_ENV, TOKEN_FILE_ENV, TokenFileError

ADDRESS_ENV = "PARTITA_CONTROL_PLANE"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: The type argparse gives ``add_subparsers()``; generic only to type checkers.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
ClientCommand = Callable[[argparse.Namespace, ControlPlaneClient], int]


class UsageError(Exception):
    """The command line is wrong in a way argparse cannot see (a tag without '=', a bad asset key)."""


def connection_parent() -> argparse.ArgumentParser:
    """A parent parser giving a subcommand ``--control-plane HOST:PORT`` and the ``--tls-*`` flags."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--control-plane",
        metavar="HOST:PORT",
        help=f"address of the control plane (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})",
    )
    add_client_tls_arguments(parent, what="the control plane")
    parent.add_argument(
        "--token",
        help=f"API token (default: ${TOKEN_ENV}, else the file ${TOKEN_FILE_ENV} names, else the token "
        "`partita dev` wrote for a control plane on this machine)",
    )
    return parent


def json_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print machine-readable JSON (stable keys)")
    return parent


def control_plane_address(args: argparse.Namespace) -> str:
    address: str | None = getattr(args, "control_plane", None)
    return address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def with_client(command: ClientCommand) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: connect, run it, and turn every failure into one ``error:`` line and an exit code."""

    def handler(args: argparse.Namespace) -> int:
        try:
            tls = client_tls_from_args(args)
            with ControlPlaneClient(
                control_plane_address(args), tls=tls, token=getattr(args, "token", None)
            ) as client:
                return command(args, client)
        except TokenFileError as error:
            return fail(str(error), EXIT_USAGE)
        except (UsageError, InvalidArgumentError) as error:
            return fail(str(error), EXIT_USAGE)
        except PartitaError as error:  # the client's errors, and SDK errors on parsing keys
            code = EXIT_FAILED if isinstance(error, ControlPlaneClientError) else EXIT_USAGE
            return fail(str(error), code)
        except KeyboardInterrupt:
            return 130

    return handler


def fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def parse_asset_keys(text: str, flag: str) -> tuple[AssetKey, ...]:
    """``a,b/c`` -> (AssetKey("a"), AssetKey(["b", "c"]))."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise UsageError(f"{flag} needs at least one asset key, e.g. {flag} events,warehouse/daily_summary.")
    try:
        return tuple(AssetKey.from_user_string(part) for part in parts)
    except PartitaError as error:
        raise UsageError(f"{flag}: {error}") from error


def parse_keys(text: str, flag: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    if not keys:
        raise UsageError(f"{flag} needs at least one partition key, e.g. {flag} 2024-01-01,2024-01-02.")
    return keys


def parse_tags(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["team=data", "env=prod"]`` -> ``{"team": "data", "env": "prod"}``."""
    tags: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag {pair!r} is not KEY=VALUE, e.g. --tag team=data.")
        tags[key.strip()] = value
    return tags


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of 0 or more."""
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from error
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 or more")
    return value

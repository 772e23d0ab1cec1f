"""``partita tokens``: create, list and revoke API tokens; ``partita whoami``: the identity the CLI uses.

``partita tokens create-admin NAME --db URL`` makes the first admin token offline, straight in the
database (nobody can call CreateApiToken before a token exists); see docs/security.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.app import DEFAULT_DATABASE_URL
from control_plane.cli import format as fmt
from control_plane.cli.command import (
    EXIT_OK,
    EXIT_USAGE,
    Subparsers,
    connection_parent,
    fail,
    json_parent,
    with_client,
)
from control_plane.cli.secret_options import add_database_arguments, database_url
from control_plane.client import ControlPlaneClient
from partita.controlplane.v1 import auth_pb2

ROLES = ("viewer", "operator", "admin")
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SHOWN_ONCE = "Store it now (e.g. in PARTITA_TOKEN or a file for PARTITA_TOKEN_FILE): it is not shown again."


def add_parser(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("tokens", help="Create, list and revoke API tokens (admin).")
    commands = group.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    create = commands.add_parser(
        "create", parents=[connection_parent(), json_parent()], help="Create an API token; prints it once."
    )
    _token_arguments(create)
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument(
        "--location",
        action="append",
        default=[],
        metavar="LOCATION",
        help="a code location the token may act on (repeatable; default: all)",
    )
    create.set_defaults(handler=with_client(create_command))
    listing = commands.add_parser(
        "list", parents=[connection_parent(), json_parent()], help="List API tokens (never their secrets)."
    )
    listing.set_defaults(handler=with_client(list_command))
    revoke = commands.add_parser("revoke", parents=[connection_parent()], help="Revoke an API token.")
    revoke.add_argument("name")
    revoke.set_defaults(handler=with_client(revoke_command))
    admin = commands.add_parser(
        "create-admin",
        parents=[json_parent()],
        help="Create an admin token offline, in the database (the first token).",
    )
    _token_arguments(admin)
    # The same sources as the control plane's (a mounted Secret file in a pod), and its default.
    add_database_arguments(admin, default=DEFAULT_DATABASE_URL)
    admin.set_defaults(handler=create_admin_command)
    whoami = subparsers.add_parser(
        "whoami", parents=[connection_parent(), json_parent()], help="Show the identity the CLI calls as."
    )
    whoami.set_defaults(handler=with_client(whoami_command))


def _token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a unique name, e.g. ci or alice")
    parser.add_argument(
        "--expires-in", type=duration, metavar="DURATION", help="e.g. 30d, 12h, 2w (default: never)"
    )


def duration(text: str) -> timedelta:
    """An argparse type: ``30d``, ``12h``, ``90m``, ``2w``, ``1d12h``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30d, 12h or 2w")
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_UNITS[unit]: int(number)})
    if total <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return total


def create_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    created = client.create_api_token(
        args.name, _role_to_proto(args.role), locations=args.location, expires_in=args.expires_in
    )
    _print_created(args, created.token, created.api_token)
    return EXIT_OK


def create_admin_command(args: argparse.Namespace) -> int:
    # Imported here: only this command opens the database; the rest of the CLI is a plain client.
    from control_plane.auth.identity import Role
    from control_plane.auth.token_rpcs import api_token_to_proto
    from control_plane.storage import Database
    from control_plane.storage.api_tokens import ApiTokenExists, ApiTokenStore
    from control_plane.storage.database import utc_now

    database = Database.open(database_url(args))
    try:
        now = utc_now()
        expires_at = now + args.expires_in if args.expires_in else None
        created = ApiTokenStore(database).create(args.name, Role.ADMIN, expires_at=expires_at, now=now)
    except ApiTokenExists as error:
        return fail(str(error), EXIT_USAGE)
    finally:
        database.dispose()
    _print_created(args, created.token, api_token_to_proto(created.record))
    return EXIT_OK


def list_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    tokens = client.list_api_tokens()
    if args.json:
        sys.stdout.write(json.dumps([token_json(token) for token in tokens]) + "\n")
        return EXIT_OK
    if not tokens:
        sys.stdout.write("No API tokens.\n")
        return EXIT_OK
    rows = [
        [
            token.name,
            _role_label(token.role),
            ",".join(token.locations) or "all",
            _time(token.created_at),
            _time(token.expires_at) if token.HasField("expires_at") else "never",
            _time(token.revoked_at) if token.HasField("revoked_at") else "-",
            _time(token.last_used_at) if token.HasField("last_used_at") else "never",
        ]
        for token in tokens
    ]
    headers = ("NAME", "ROLE", "LOCATIONS", "CREATED", "EXPIRES", "REVOKED", "LAST USED")
    sys.stdout.write(fmt.table(headers, rows) + "\n")
    return EXIT_OK


def revoke_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    token = client.revoke_api_token(args.name)
    print(f"Revoked API token {token.name!r}: it is refused from now on.")
    return EXIT_OK


def whoami_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    identity = client.whoami()
    record = {
        "name": identity.name,
        "role": _role_label(identity.role),
        "kind": identity.kind,
        "locations": list(identity.locations) or None,
        "control_plane": client.address,
    }
    if args.json:
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        scope = ", ".join(identity.locations) or "all code locations"
        print(f"{identity.name} ({identity.kind}, {record['role']}, {scope}) at {client.address}")
    return EXIT_OK


def token_json(token: auth_pb2.ApiToken) -> dict[str, object]:
    return {
        "name": token.name,
        "role": _role_label(token.role),
        "locations": list(token.locations) or None,
        "created_at": _time(token.created_at),
        "expires_at": _time(token.expires_at) if token.HasField("expires_at") else None,
        "revoked_at": _time(token.revoked_at) if token.HasField("revoked_at") else None,
        "last_used_at": _time(token.last_used_at) if token.HasField("last_used_at") else None,
    }


def _print_created(args: argparse.Namespace, secret: str, token: auth_pb2.ApiToken) -> None:
    if args.json:
        sys.stdout.write(json.dumps({"token": secret, **token_json(token)}) + "\n")
        return
    sys.stdout.write(secret + "\n")
    print(f"Created {_role_label(token.role)} token {token.name!r}. {_SHOWN_ONCE}", file=sys.stderr)


def _role_to_proto(label: str) -> auth_pb2.Role.ValueType:
    return auth_pb2.Role.Value(f"ROLE_{label.upper()}")


def _role_label(role: auth_pb2.Role.ValueType) -> str:
    return auth_pb2.Role.Name(role).removeprefix("ROLE_").lower()


def _time(stamp: Timestamp) -> str:
    return stamp.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")

"""``partita asset status LOCATION ASSET``: the latest status of every partition of an asset."""

from __future__ import annotations

import argparse
import json
import sys

from code_server.partitions.keys import PartitionKeyRange
from control_plane.cli import format as fmt
from control_plane.cli import json_format
from control_plane.cli.command import (
    EXIT_OK,
    Subparsers,
    UsageError,
    connection_parent,
    json_parent,
    parse_asset_keys,
    with_client,
)
from control_plane.client import ControlPlaneClient


def add_parser(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("asset", help="Inspect an asset's partitions.")
    commands = group.add_subparsers(dest="asset_command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status",
        parents=[connection_parent(), json_parent()],
        help="Latest status of each partition of an asset, as ranges of equal status.",
    )
    status.add_argument("location", metavar="LOCATION", help="the asset's code location")
    status.add_argument("asset", metavar="ASSET", help="the asset key, e.g. warehouse/events")
    status.add_argument("--from", dest="from_key", metavar="KEY", help="first key to show (with --to)")
    status.add_argument("--to", dest="to_key", metavar="KEY", help="last key to show (with --from)")
    status.set_defaults(handler=with_client(status_command))


def status_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    (asset_key,) = parse_asset_keys(args.asset, "ASSET")
    if (args.from_key is None) != (args.to_key is None):
        raise UsageError("--from and --to go together: both ends of the range are included.")
    key_range = PartitionKeyRange(args.from_key, args.to_key) if args.from_key is not None else None
    status = client.asset_partition_status(args.location, asset_key, key_range)
    asset = asset_key.to_user_string()
    if args.json:
        text = json.dumps(json_format.asset_status_json(args.location, asset, status))
    else:
        text = fmt.asset_status_text(args.location, asset, status)
    sys.stdout.write(text + "\n")
    return EXIT_OK

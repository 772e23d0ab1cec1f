"""``partita locations list``: the code locations the control plane knows, and whether each is loaded."""

from __future__ import annotations

import argparse
import json
import sys

from control_plane.cli import format as fmt
from control_plane.cli import json_format
from control_plane.cli.command import EXIT_OK, Subparsers, connection_parent, json_parent, with_client
from control_plane.client import ControlPlaneClient


def add_parser(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("locations", help="Show the code locations the control plane serves.")
    commands = group.add_subparsers(dest="locations_command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list", parents=[connection_parent(), json_parent()], help="List code locations and their status."
    )
    listing.set_defaults(handler=with_client(list_command))


def list_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    locations = client.code_locations()
    if args.json:
        text = json.dumps([json_format.location_json(location) for location in locations])
    elif not locations:
        text = "No code locations: start the control plane with --code-server NAME=HOST:PORT."
    else:
        text = fmt.table(fmt.LOCATION_HEADERS, [fmt.location_row(location) for location in locations])
        problems = [
            f"{location.name}: {fmt.location_error(location)}"
            for location in locations
            if fmt.location_error(location)
        ]
        if problems:
            text += "\n\n" + "\n".join(problems)
    sys.stdout.write(text + "\n")
    return EXIT_OK

"""``partita runs list|get|logs|terminate``."""

from __future__ import annotations

import argparse
import json
import sys

from control_plane.api.enums import run_status_from_proto
from control_plane.cli import format as fmt
from control_plane.cli import json_format
from control_plane.cli.command import (
    EXIT_OK,
    Subparsers,
    connection_parent,
    json_parent,
    non_negative_int,
    parse_tags,
    with_client,
)
from control_plane.client import ControlPlaneClient
from control_plane.records import RunStatus
from partita.controlplane.v1 import runs_pb2


def add_parser(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("runs", help="List, inspect and terminate runs, and read their logs.")
    commands = group.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    connection, as_json = connection_parent(), json_parent()

    listing = commands.add_parser("list", parents=[connection, as_json], help="List runs, newest first.")
    listing.add_argument("--backfill", metavar="ID", help="only the runs of this backfill")
    listing.add_argument("--status", action="append", choices=[s.value for s in RunStatus], help="repeatable")
    listing.add_argument("--tag", action="append", metavar="KEY=VALUE", help="only runs with this tag")
    listing.add_argument("--location", help="only runs of this code location")
    listing.add_argument(
        "--exclude-backfill-runs",
        action="store_true",
        help="only runs outside backfills (without --backfill)",
    )
    listing.add_argument("--limit", type=non_negative_int, default=50, help="most runs shown (default 50)")
    listing.set_defaults(handler=with_client(list_command))

    get = commands.add_parser("get", parents=[connection, as_json], help="Show one run.")
    get.add_argument("run_id", metavar="ID")
    get.set_defaults(handler=with_client(get_command))

    logs = commands.add_parser("logs", parents=[connection, as_json], help="Print a run's log.")
    logs.add_argument("run_id", metavar="ID")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new entries until the run ends"
    )
    logs.add_argument(
        "--after", type=non_negative_int, default=0, metavar="SEQUENCE", help="skip earlier entries"
    )
    logs.set_defaults(handler=with_client(logs_command))

    terminate = commands.add_parser("terminate", parents=[connection, as_json], help="Terminate a run.")
    terminate.add_argument("run_id", metavar="ID")
    terminate.set_defaults(handler=with_client(terminate_command))


def list_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    runs: list[runs_pb2.Run] = []
    token = ""
    while len(runs) < args.limit:
        page = client.list_runs(
            backfill_id=args.backfill,
            statuses=[RunStatus(s) for s in args.status or ()],
            tags=parse_tags(args.tag),
            include_backfill_runs=not args.exclude_backfill_runs,
            location=args.location,
            page_size=min(args.limit - len(runs), 1000),
            page_token=token,
        )
        runs.extend(page.runs)
        token = page.next_page_token
        if not token:
            break
    runs = runs[: args.limit]
    if args.json:
        _print(json.dumps([json_format.run_json(run) for run in runs]))
    elif runs:
        _print(fmt.table(fmt.RUN_HEADERS, [fmt.run_row(run) for run in runs]))
    else:
        _print("No runs.")
    return EXIT_OK


def get_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    run = client.get_run(args.run_id)
    _print(json.dumps(json_format.run_json(run)) if args.json else fmt.run_text(run))
    return EXIT_OK


def logs_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    """Entries as they arrive (JSON lines with --json), flushed so that ``| grep`` sees them at once."""
    for entry in client.run_logs(args.run_id, after_sequence=args.after, follow=args.follow):
        line = json.dumps(json_format.log_entry_json(entry)) if args.json else fmt.log_entry_text(entry)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return EXIT_OK


def terminate_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    run = client.terminate_run(args.run_id)
    if args.json:
        _print(json.dumps(json_format.run_json(run)))
    else:
        _print(f"Run {run.run_id}: {run_status_from_proto(run.status).value}")
    return EXIT_OK


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")

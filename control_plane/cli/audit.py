"""``partita audit list``: who changed what, when, from where, and how it ended (needs the admin role)."""

from __future__ import annotations

import argparse
import json
import sys

from control_plane.cli import format as fmt
from control_plane.cli.command import EXIT_OK, Subparsers, connection_parent, json_parent, with_client
from control_plane.cli.json_format import Json, timestamp_json
from control_plane.client import ControlPlaneClient
from partita.controlplane.v1 import audit_pb2

AUDIT_HEADERS = ("TIME", "IDENTITY", "RPC", "TARGET", "STATUS", "PEER", "SUMMARY")


def add_parser(subparsers: Subparsers) -> None:
    group = subparsers.add_parser(
        "audit", help="Read the audit log: every mutating call, who made it and how it ended."
    )
    commands = group.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list",
        parents=[connection_parent(), json_parent()],
        help="List audit events, newest first (needs the admin role).",
    )
    listing.add_argument("--limit", type=positive_limit, default=50, help="most events shown (default 50)")
    listing.add_argument("--identity", metavar="NAME", help="only the calls of this identity")
    listing.add_argument("--rpc", metavar="METHOD", help="only calls of this RPC, e.g. CancelBackfill")
    listing.add_argument(
        "--target-kind", choices=["backfill", "run", "sensor", "schedule", "location", "token"]
    )
    listing.add_argument("--target", metavar="ID", help="only calls on this backfill, run, sensor, ...")
    listing.set_defaults(handler=with_client(list_command))


def positive_limit(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number from 1 to 1,000,000")
    return int(value)


def list_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    events: list[audit_pb2.AuditEvent] = []
    token = ""
    while len(events) < args.limit:
        page = client.list_audit_events(
            identity_name=args.identity,
            rpc=args.rpc,
            target_kind=args.target_kind,
            target_id=args.target,
            page_size=min(args.limit - len(events), 1000),
            page_token=token,
        )
        events.extend(page.events)
        token = page.next_page_token
        if not token:
            break
    events = events[: args.limit]
    if args.json:
        text = json.dumps([audit_event_json(event) for event in events])
    elif events:
        text = fmt.table(AUDIT_HEADERS, [audit_event_row(event) for event in events])
    else:
        text = "No audit events."
    sys.stdout.write(text + "\n")
    return EXIT_OK


def audit_event_row(event: audit_pb2.AuditEvent) -> list[str]:
    target = f"{event.target_kind} {event.target_id}" if event.target_id else event.target_kind or "-"
    if event.location_name and event.target_kind in ("sensor", "schedule"):
        target = f"{event.target_kind} {event.location_name}/{event.target_id}"
    status = event.status_code if not event.error_message else f"{event.status_code}: {event.error_message}"
    return [
        fmt.timestamp_text(event.time),
        event.identity_name if not event.role else f"{event.identity_name} ({event.role})",
        event.rpc,
        target,
        _one_line(status, 60),
        event.peer,
        _one_line(event.summary, 80),
    ]


def audit_event_json(event: audit_pb2.AuditEvent) -> Json:
    """Stable keys (add, never rename): the CLI's contract with scripts."""
    return {
        "id": event.event_id,
        "time": timestamp_json(event.time),
        "identity": event.identity_name,
        "identity_kind": event.identity_kind,
        "role": event.role or None,
        "peer": event.peer,
        "rpc": event.rpc,
        "target_kind": event.target_kind or None,
        "target_id": event.target_id or None,
        "location": event.location_name or None,
        "summary": event.summary,
        "status": event.status_code,
        "error": event.error_message or None,
    }


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"

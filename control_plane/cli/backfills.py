"""``partita backfill launch|status|list|cancel|retry|pause|resume|limits``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import TextIO

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.wire.automation import BackfillRequestSpec
from control_plane.api.enums import backfill_status_from_proto
from control_plane.cli import format as fmt
from control_plane.cli import json_format
from control_plane.cli.command import (
    EXIT_FAILED,
    EXIT_OK,
    Subparsers,
    UsageError,
    connection_parent,
    json_parent,
    non_negative_int,
    parse_asset_keys,
    parse_keys,
    parse_tags,
    with_client,
)
from control_plane.client import ControlPlaneClient
from control_plane.records import BackfillStatus
from control_plane.views import LaunchOptions
from partita.controlplane.v1 import backfills_pb2

#: Without a terminal, ``status --watch`` prints a line at most this often (and at every status change).
WATCH_LINE_SECONDS = 5.0


def add_parser(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("backfill", help="Launch, follow and control backfills.")
    commands = group.add_subparsers(dest="backfill_command", required=True, metavar="COMMAND")
    connection, as_json = connection_parent(), json_parent()

    launch = commands.add_parser(
        "launch",
        parents=[connection, as_json],
        help="Launch a backfill of some assets over some partitions.",
        description="Launch a backfill. Name the partitions one way: --from/--to, --partitions, --all, "
        "or --partitions-by-asset (repeatable).",
    )
    launch.add_argument("--location", required=True, help="code location of the assets")
    launch.add_argument("--select", help="comma-separated asset keys, e.g. events,warehouse/daily")
    launch.add_argument("--from", dest="from_key", metavar="KEY", help="first partition key (inclusive)")
    launch.add_argument("--to", dest="to_key", metavar="KEY", help="last partition key (inclusive)")
    launch.add_argument("--partitions", metavar="K1,K2", help="comma-separated partition keys")
    launch.add_argument("--all", action="store_true", help="every partition of the most upstream assets")
    launch.add_argument(
        "--partitions-by-asset",
        action="append",
        metavar="ASSET=K1,K2",
        help="an asset with its own partition keys (repeatable; assets may differ in partitions)",
    )
    launch.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag the backfill and its runs")
    launch.add_argument("--title")
    launch.add_argument("--description")
    launch.add_argument("--max-concurrent-runs", type=non_negative_int, metavar="N", help="0: no limit")
    launch.add_argument("--priority", type=int, default=0, help="higher goes first (default 0)")
    launch.add_argument("--dry-run", action="store_true", help="show the planned runs; write nothing")
    launch.set_defaults(handler=with_client(launch_command))

    status = commands.add_parser("status", parents=[connection, as_json], help="Show a backfill's progress.")
    status.add_argument("backfill_id", metavar="ID")
    status.add_argument(
        "--watch",
        action="store_true",
        help="follow it until it ends; exit 0 only if it completed successfully",
    )
    status.set_defaults(handler=with_client(status_command))

    listing = commands.add_parser("list", parents=[connection, as_json], help="List backfills, newest first.")
    listing.add_argument(
        "--status", action="append", choices=[s.value for s in BackfillStatus], help="repeatable"
    )
    listing.add_argument("--tag", action="append", metavar="KEY=VALUE", help="only backfills with this tag")
    listing.add_argument("--location", help="only backfills of this code location")
    listing.add_argument(
        "--limit", type=non_negative_int, default=50, help="most backfills shown (default 50)"
    )
    listing.set_defaults(handler=with_client(list_command))

    for name, help_text in (
        ("cancel", "Stop launching runs and terminate the active ones."),
        ("retry", "Re-queue the failed and upstream-failed partitions of a finished backfill."),
        ("pause", "Launch no new runs until resumed."),
        ("resume", "Resume a paused backfill."),
    ):
        action = commands.add_parser(name, parents=[connection, as_json], help=help_text)
        action.add_argument("backfill_id", metavar="ID")
        action.set_defaults(handler=with_client(action_command), action=name)

    limits = commands.add_parser(
        "limits", parents=[connection, as_json], help="Change a backfill's concurrency limit or priority."
    )
    limits.add_argument("backfill_id", metavar="ID")
    limits.add_argument("--max-concurrent-runs", type=non_negative_int, metavar="N", help="0: no limit")
    limits.add_argument("--priority", type=int)
    limits.set_defaults(handler=with_client(limits_command))


# --- launch --------------------------------------------------------------------------------------


def launch_request(args: argparse.Namespace) -> tuple[BackfillRequestSpec, LaunchOptions]:
    """The request the arguments describe; raises ``UsageError`` when they do not describe one."""
    forms = [
        name
        for name, given in (
            ("--from/--to", args.from_key is not None or args.to_key is not None),
            ("--partitions", args.partitions is not None),
            ("--all", args.all),
            ("--partitions-by-asset", bool(args.partitions_by_asset)),
        )
        if given
    ]
    if len(forms) != 1:
        which = f"got {' and '.join(forms)}" if forms else "got none"
        raise UsageError(
            f"name the partitions exactly one way: --from K --to K, --partitions, --all or --partitions-by-asset ({which})."
        )
    selection = parse_asset_keys(args.select, "--select") if args.select is not None else ()
    spec_fields: dict[str, object] = {}
    if forms[0] == "--from/--to":
        if args.from_key is None or args.to_key is None:
            raise UsageError("--from and --to go together: both ends of the range are included.")
        spec_fields["partition_ranges"] = (PartitionKeyRange(args.from_key, args.to_key),)
    elif forms[0] == "--partitions":
        spec_fields["partition_keys"] = parse_keys(args.partitions, "--partitions")
    elif forms[0] == "--all":
        spec_fields["all_partitions"] = True
    else:
        by_asset = _partitions_by_asset(args.partitions_by_asset)
        spec_fields["partitions_by_asset"] = by_asset
        selection = selection or tuple(by_asset)
    if not selection:
        raise UsageError("--select is required: which assets to backfill (comma-separated keys).")
    tags = parse_tags(args.tag)
    spec = BackfillRequestSpec(
        asset_keys=selection,
        tags=tags,
        title=args.title,
        description=args.description,
        **spec_fields,  # type: ignore[arg-type]
    )
    options = LaunchOptions(
        location=args.location,
        title=args.title,
        description=args.description,
        tags=tags,
        max_concurrent_runs=args.max_concurrent_runs or None,
        priority=args.priority,
        dry_run=args.dry_run,
    )
    return spec, options


def _partitions_by_asset(entries: list[str]) -> dict[AssetKey, tuple[str, ...]]:
    by_asset: dict[AssetKey, tuple[str, ...]] = {}
    for entry in entries:
        asset, sep, keys = entry.partition("=")
        if not sep:
            raise UsageError(
                f"--partitions-by-asset {entry!r} is not ASSET=K1,K2, e.g. events=2024-01-01,2024-01-02."
            )
        (key,) = parse_asset_keys(asset, "--partitions-by-asset")
        if key in by_asset:
            raise UsageError(
                f"--partitions-by-asset names {key.to_user_string()!r} twice; give its keys once."
            )
        by_asset[key] = parse_keys(keys, f"--partitions-by-asset {asset}=")
    return by_asset


def launch_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    spec, options = launch_request(args)
    launched = client.launch_backfill(spec, options)
    if isinstance(launched, backfills_pb2.BackfillPlan):
        _print(json.dumps(json_format.plan_json(launched)) if args.json else fmt.plan_text(launched))
        return EXIT_OK
    if args.json:
        _print(json.dumps(json_format.backfill_json(launched)))
        return EXIT_OK
    total = sum(fmt.counts_of(launched.partition_counts).values())
    _print(
        f"Launched backfill {launched.backfill_id}: {fmt.number(total)} partitions of "
        f"{len(launched.asset_counts)} assets in location {launched.location_name}.\n"
        f"Follow it with: partita backfill status {launched.backfill_id} --watch"
    )
    return EXIT_OK


# --- status, list, actions -----------------------------------------------------------------------


def status_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    if args.watch:
        return watch(client, args.backfill_id, as_json=args.json, out=sys.stdout)
    backfill = client.get_backfill(args.backfill_id)
    _print(json.dumps(json_format.backfill_json(backfill)) if args.json else fmt.backfill_text(backfill))
    return EXIT_OK


def watch(
    client: ControlPlaneClient,
    backfill_id: str,
    *,
    as_json: bool,
    out: TextIO,
    terminal: os.terminal_size | None = None,
) -> int:
    """Follow the backfill until it ends: a live block on a terminal, lines otherwise (JSON lines with --json)."""
    live = out.isatty() and not as_json
    size = terminal or shutil.get_terminal_size()
    drawn_rows = 0
    last: backfills_pb2.Backfill | None = None
    last_line_at = 0.0
    for backfill in client.watch_backfill(backfill_id):
        status_changed = last is None or last.status != backfill.status
        last = backfill
        ended = backfill_status_from_proto(backfill.status).is_terminal
        if as_json:
            out.write(json.dumps(json_format.backfill_json(backfill)) + "\n")
        elif live:
            block = _fitted_block(backfill, size)
            # Move back up over the previous block and clear it, then draw the new one in its place.
            out.write((f"\x1b[{drawn_rows}F\x1b[J" if drawn_rows else "") + block + "\n")
            drawn_rows = _rows(block, size.columns)
        elif ended or status_changed or time.monotonic() - last_line_at >= WATCH_LINE_SECONDS:
            out.write(f"{fmt.timestamp_text(backfill.updated_at)} {fmt.watch_line(backfill)}\n")
            last_line_at = time.monotonic()
        out.flush()
    if last is None:
        raise UsageError(f"the control plane sent nothing about backfill {backfill_id}.")
    status = backfill_status_from_proto(last.status)
    if not status.is_terminal:
        print(
            f"error: the watch of backfill {backfill_id} ended while it was {status.value}.", file=sys.stderr
        )
        return EXIT_FAILED
    if not live and not as_json:
        out.write("\n" + fmt.backfill_text(last) + "\n")
    return EXIT_OK if status is BackfillStatus.COMPLETED_SUCCESS else EXIT_FAILED


def _fitted_block(backfill: backfills_pb2.Backfill, size: os.terminal_size) -> str:
    """The status block with as many asset rows as fit: a block taller than the screen cannot be redrawn."""
    full = fmt.backfill_text(backfill)
    spare = size.lines - 1 - _rows(full, size.columns)
    if spare >= 0:
        return full
    return fmt.backfill_text(backfill, max_assets=max(1, len(backfill.asset_counts) + spare - 1))


def _rows(block: str, columns: int) -> int:
    """Screen rows the block takes, counting lines that wrap."""
    width = max(columns, 1)
    return sum(max(1, -(-len(line) // width)) for line in block.split("\n"))


def list_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    backfills: list[backfills_pb2.Backfill] = []
    token = ""
    while len(backfills) < args.limit:
        page = client.list_backfills(
            statuses=[BackfillStatus(s) for s in args.status or ()],
            tags=parse_tags(args.tag),
            location=args.location,
            page_size=min(args.limit - len(backfills), 1000),
            page_token=token,
        )
        backfills.extend(page.backfills)
        token = page.next_page_token
        if not token:
            break
    if args.json:
        _print(json.dumps([json_format.backfill_json(b) for b in backfills[: args.limit]]))
    elif backfills:
        _print(fmt.table(fmt.BACKFILL_HEADERS, [fmt.backfill_row(b) for b in backfills[: args.limit]]))
    else:
        _print("No backfills.")
    return EXIT_OK


def action_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    detail = ""
    if args.action == "cancel":
        backfill = client.cancel_backfill(args.backfill_id)
    elif args.action == "retry":
        result = client.retry_backfill(args.backfill_id)
        backfill = result.backfill
        detail = f" ({fmt.number(result.requeued_partition_count)} partitions re-queued)"
    elif args.action == "pause":
        backfill = client.pause_backfill(args.backfill_id)
    else:
        backfill = client.resume_backfill(args.backfill_id)
    _report(args, backfill, detail)
    return EXIT_OK


def limits_command(args: argparse.Namespace, client: ControlPlaneClient) -> int:
    if args.max_concurrent_runs is None and args.priority is None:
        raise UsageError("give --max-concurrent-runs N (0: no limit) or --priority P, or both.")
    backfill = client.update_backfill_limits(
        args.backfill_id, max_concurrent_runs=args.max_concurrent_runs, priority=args.priority
    )
    limits = backfill.limits
    limit = str(limits.max_concurrent_runs) if limits.max_concurrent_runs else "no"
    _report(args, backfill, f" ({limit} concurrent-run limit, priority {limits.priority})")
    return EXIT_OK


def _report(args: argparse.Namespace, backfill: backfills_pb2.Backfill, detail: str) -> None:
    if args.json:
        _print(json.dumps(json_format.backfill_json(backfill)))
    else:
        status = backfill_status_from_proto(backfill.status).value
        _print(f"Backfill {backfill.backfill_id}: {status}{detail}")


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")

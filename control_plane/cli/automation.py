"""``partita sensor|schedule list|start|stop|preview|ticks``: sensors and schedules in the control plane.

``--json`` prints the API's messages with their proto field names (stable keys).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from control_plane.cli import format as fmt
from control_plane.cli.command import (
    EXIT_FAILED,
    EXIT_OK,
    Subparsers,
    connection_parent,
    json_parent,
    non_negative_int,
    with_client,
)
from control_plane.client import ControlPlaneClient
from partita.common.v1 import automation_pb2

_STATUS = {
    automation_pb2.INSTIGATOR_STATUS_RUNNING: "running",
    automation_pb2.INSTIGATOR_STATUS_STOPPED: "stopped",
}


def add_parser(subparsers: Subparsers) -> None:
    for kind in ("sensor", "schedule"):
        group = subparsers.add_parser(kind, help=f"List, start, stop and preview {kind}s; show their ticks.")
        commands = group.add_subparsers(dest=f"{kind}_command", required=True, metavar="COMMAND")
        connection, as_json = connection_parent(), json_parent()
        located = argparse.ArgumentParser(add_help=False)
        located.add_argument("name", metavar="NAME")
        located.add_argument(
            "--location", default="", help="its code location (needed if several define NAME)"
        )

        listing = commands.add_parser(
            "list", parents=[connection, as_json], help=f"List {kind}s and their state."
        )
        listing.add_argument("--location", help="only this code location")
        listing.set_defaults(handler=with_client(_bound(list_command, kind)))
        for action in ("start", "stop"):
            command = commands.add_parser(
                action, parents=[connection, as_json, located], help=f"{action.title()} a {kind}."
            )
            command.set_defaults(
                handler=with_client(_bound(start_command if action == "start" else stop_command, kind))
            )
        preview = commands.add_parser(
            "preview", parents=[connection, as_json, located], help=f"Evaluate a {kind} now; launch nothing."
        )
        preview.set_defaults(handler=with_client(_bound(preview_command, kind)))
        ticks = commands.add_parser(
            "ticks", parents=[connection, as_json, located], help=f"A {kind}'s ticks, newest first."
        )
        ticks.add_argument("--limit", type=non_negative_int, default=20, help="most ticks shown (default 20)")
        ticks.set_defaults(handler=with_client(_bound(ticks_command, kind)))


Command = Callable[[argparse.Namespace, ControlPlaneClient, str], int]


def _bound(command: Command, kind: str) -> Callable[[argparse.Namespace, ControlPlaneClient], int]:
    return lambda args, client: command(args, client, kind)


def list_command(args: argparse.Namespace, client: ControlPlaneClient, kind: str) -> int:
    states: list[Any] = (
        list(client.list_sensors(args.location))
        if kind == "sensor"
        else list(client.list_schedules(args.location))
    )
    if args.json:
        return _print(json.dumps([_json(state) for state in states]))
    if not states:
        return _print(f"No {kind}s.")
    headers = ["LOCATION", "NAME", "STATUS", "WHEN", "LAST TICK", "NEXT TICK"]
    rows = [
        [
            state.location_name,
            state.definition.name,
            _STATUS.get(state.status, "?"),
            _when(state),
            _tick_status(state.last_tick.status) if state.HasField("last_tick") else "-",
            fmt.timestamp_text(state.next_tick_at) if state.HasField("next_tick_at") else "-",
        ]
        for state in states
    ]
    return _print(fmt.table(headers, rows))


def start_command(args: argparse.Namespace, client: ControlPlaneClient, kind: str) -> int:
    return _set_running(args, client, kind, "Start")


def stop_command(args: argparse.Namespace, client: ControlPlaneClient, kind: str) -> int:
    return _set_running(args, client, kind, "Stop")


def _set_running(args: argparse.Namespace, client: ControlPlaneClient, kind: str, verb: str) -> int:
    title = kind.title()
    running = verb == "Start"
    state: Any = (
        client.set_sensor_running(args.location, args.name, running=running)
        if kind == "sensor"
        else client.set_schedule_running(args.location, args.name, running=running)
    )
    if args.json:
        return _print(json.dumps(_json(state)))
    return _print(
        f"{title} {state.definition.name} ({state.location_name}): {_STATUS.get(state.status, '?')}"
    )


def preview_command(args: argparse.Namespace, client: ControlPlaneClient, kind: str) -> int:
    response: Any = (
        client.preview_sensor(args.location, args.name)
        if kind == "sensor"
        else client.preview_schedule(args.location, args.name)
    )
    if args.json:
        _print(json.dumps(_json(response)))
    elif response.WhichOneof("result") == "error":
        _print(
            f"The {kind} failed: {response.error.class_name}: {response.error.message}\n{response.error.traceback}"
        )
    else:
        result = response.ok
        lines = [
            f"{len(result.backfill_requests)} backfill request(s), {len(result.run_requests)} run request(s)"
        ]
        lines += [f"  backfill: {fmt.target_text(request.target)}" for request in result.backfill_requests]
        lines += [
            f"  run: {', '.join(fmt.asset_list(r.asset_selection)) or '(target)'} {r.partition_key}".rstrip()
            for r in result.run_requests
        ]
        if result.HasField("skip_reason"):
            lines.append(f"  skipped: {result.skip_reason}")
        _print("\n".join(lines))
    return EXIT_FAILED if response.WhichOneof("result") == "error" else EXIT_OK


def ticks_command(args: argparse.Namespace, client: ControlPlaneClient, kind: str) -> int:
    limit = max(1, args.limit)
    ticks: list[Any] = (
        list(client.sensor_ticks(args.location, args.name, limit=limit))
        if kind == "sensor"
        else list(client.schedule_ticks(args.location, args.name, limit=limit))
    )[: args.limit]
    if args.json:
        return _print(json.dumps([_json(tick) for tick in ticks]))
    if not ticks:
        return _print("No ticks.")
    rows = [
        [
            tick.tick_id,
            _tick_status(tick.status),
            fmt.timestamp_text(tick.started_at),
            ", ".join([*tick.backfill_ids, *tick.run_ids]) or "-",
            tick.skip_reason or (tick.error.message if tick.HasField("error") else ""),
        ]
        for tick in ticks
    ]
    return _print(fmt.table(["TICK", "STATUS", "STARTED", "CREATED", "DETAIL"], rows))


def _when(state: Any) -> str:
    definition = state.definition
    if hasattr(definition, "cron_schedule"):
        return f"{definition.cron_schedule} ({definition.execution_timezone})"
    return f"every {definition.minimum_interval_seconds}s"


def _tick_status(value: int) -> str:
    return automation_pb2.TickStatus.Name(value).removeprefix("TICK_STATUS_").lower()  # type: ignore[arg-type]


def _json(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _print(text: str) -> int:
    sys.stdout.write(text + "\n")
    return EXIT_OK

"""``partita execute-run``: run a run's assets inside the user-code image.

Every option can also come from the environment (``PARTITA_RUN_ID``, ``PARTITA_ASSETS``,
``PARTITA_PARTITION_RANGE``, ``PARTITA_PARTITION_KEY``, ``PARTITA_CONTROL_PLANE``, ``PARTITA_MODULE``,
``PARTITA_PYTHON_FILE``), which is how a Kubernetes Job passes them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from code_server.asset_key import AssetKey
from code_server.errors import PartitaError
from code_server.loading import load_definitions
from code_server.partitions.keys import PartitionKeyRange
from code_server.run_worker.events import ErrorInfo, EventSink, RunFinished, RunStarted
from code_server.run_worker.executor import RunOutcome, RunPlan, execute_run
from code_server.run_worker.json_sink import JsonLinesEventSink

#: Exit code for a run whose arguments or code are unusable (as opposed to an asset that failed).
EXIT_BAD_RUN = RunOutcome.INVALID.value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "execute-run",
        help="Execute one run's assets over its partition key or range (inside the user-code image).",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--module", default=os.environ.get("PARTITA_MODULE"), help="user module")
    source.add_argument(
        "-f", "--python-file", default=os.environ.get("PARTITA_PYTHON_FILE"), help="user file"
    )
    parser.add_argument("--working-directory", default=os.environ.get("PARTITA_WORKING_DIRECTORY"))
    parser.add_argument("--run-id", default=os.environ.get("PARTITA_RUN_ID"))
    parser.add_argument(
        "--assets", default=os.environ.get("PARTITA_ASSETS"), help="comma-separated asset keys, e.g. a,b/c"
    )
    partitions = parser.add_mutually_exclusive_group()
    partitions.add_argument(
        "--partition-range", default=os.environ.get("PARTITA_PARTITION_RANGE"), help="START...END, inclusive"
    )
    partitions.add_argument("--partition-key", default=os.environ.get("PARTITA_PARTITION_KEY"))
    parser.add_argument(
        "--control-plane",
        default=os.environ.get("PARTITA_CONTROL_PLANE"),
        help="HOST:PORT of the control plane to report to; without it events go to --events-file or stdout",
    )
    parser.add_argument("--events-file", help="append JSON-lines events to this file instead of stdout")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    missing = [name for name in ("run_id", "assets") if not getattr(args, name)]
    if not (args.module or args.python_file):
        missing.append("module")
    if missing:
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        print(f"execute-run: missing {flags} (or their PARTITA_* environment variables)", file=sys.stderr)
        return EXIT_BAD_RUN
    sink = _open_sink(args)
    try:
        try:
            plan = RunPlan(
                run_id=args.run_id,
                asset_keys=tuple(AssetKey.from_user_string(key.strip()) for key in args.assets.split(",")),
                partition_range=_partition_range(args),
            )
            definitions = load_definitions(
                module_name=args.module,
                python_file=args.python_file,
                working_directory=args.working_directory,
            )
        except PartitaError as error:
            # Report the failure as a run outcome too, so the control plane shows it on the run.
            sink.emit(RunStarted(args.run_id))
            sink.emit(RunFinished(args.run_id, success=False, error=ErrorInfo.from_exception(error)))
            print(f"execute-run: {error}", file=sys.stderr)
            return EXIT_BAD_RUN
        return execute_run(definitions, plan, sink).value
    finally:
        sink.close()


def _partition_range(args: argparse.Namespace) -> PartitionKeyRange | None:
    if args.partition_key:
        return PartitionKeyRange(args.partition_key, args.partition_key)
    if args.partition_range:
        return PartitionKeyRange.parse(args.partition_range)
    return None


def _open_sink(args: argparse.Namespace) -> EventSink:
    if args.control_plane:
        from code_server.run_worker.grpc_sink import GrpcEventSink

        return GrpcEventSink(args.control_plane)
    return JsonLinesEventSink(path=args.events_file) if args.events_file else JsonLinesEventSink()

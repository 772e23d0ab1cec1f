"""``partita execute-run``: run a run's assets inside the user-code image.

Every option can also come from the environment (``PARTITA_RUN_ID``, ``PARTITA_RUN_ATTEMPT``,
``PARTITA_ASSETS``, ``PARTITA_PARTITION_RANGE``, ``PARTITA_PARTITION_KEY``, ``PARTITA_CONTROL_PLANE``,
``PARTITA_MODULE``, ``PARTITA_PYTHON_FILE``), which is how a Kubernetes Job passes them. The TLS
settings of the connection to the control plane come from ``--tls-*`` or ``PARTITA_TLS_CA``,
``PARTITA_TLS_CERT``, ``PARTITA_TLS_KEY`` and ``PARTITA_TLS_SERVER_NAME`` (see docs/security.md).
``PARTITA_MODULE``, ``PARTITA_PYTHON_FILE``), which is how a Kubernetes Job passes them. The run
credential comes only from ``PARTITA_RUN_CREDENTIAL`` or ``--run-credential-file``, never from the
command line, which every user of the machine can read.

With a control plane, the worker first claims its run attempt and executes nothing unless granted:
a second worker of the same attempt exits with ``EXIT_NOT_CLAIMED``.
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
from code_server.run_worker.grpc_sink import GrpcEventSink, ReportFailed
from code_server.run_worker.json_sink import JsonLinesEventSink
from code_server.tls import TlsConfigError
from code_server.tls_flags import add_client_tls_arguments, client_tls_from_args

#: Exit code for a run whose arguments or code are unusable (as opposed to an asset that failed).
EXIT_BAD_RUN = RunOutcome.INVALID.value
#: Exit code of a worker refused its claim: another worker holds the run attempt; nothing was executed.
EXIT_NOT_CLAIMED = 3
#: Exit code of a worker that could not reach the control plane to claim its run; nothing was executed.
EXIT_CLAIM_FAILED = 4


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
        "--attempt",
        type=int,
        default=int(os.environ.get("PARTITA_RUN_ATTEMPT") or 1),
        help="the run attempt to claim before executing (default 1)",
    )
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
    parser.add_argument(
        "--run-credential-file",
        help="file holding the run attempt's credential (default: the PARTITA_RUN_CREDENTIAL variable)",
    )
    parser.add_argument("--events-file", help="append JSON-lines events to this file instead of stdout")
    add_client_tls_arguments(parser, what="the control plane")
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
    try:
        sink = _open_sink(args)
    except TlsConfigError as error:
        print(f"execute-run: {error}", file=sys.stderr)
        return EXIT_CLAIM_FAILED if args.control_plane else EXIT_BAD_RUN
    except OSError as error:
        print(
            f"execute-run: cannot read --run-credential-file {args.run_credential_file}: {error}",
            file=sys.stderr,
        )
        return EXIT_BAD_RUN
    try:
        if isinstance(sink, GrpcEventSink):
            refused = _claim(sink, args.run_id, args.attempt)
            if refused is not None:
                return refused
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


def _claim(sink: GrpcEventSink, run_id: str, attempt: int) -> int | None:
    """Claim the run attempt; the exit code to end with when this worker must not execute it."""
    try:
        outcome = sink.claim(run_id, attempt)
    except ReportFailed as failed:
        print(f"execute-run: could not claim run {run_id} attempt {attempt}: {failed}", file=sys.stderr)
        return EXIT_CLAIM_FAILED
    if not outcome.granted:
        print(
            f"execute-run: run {run_id} attempt {attempt} is not this worker's to execute: "
            f"{outcome.refusal} Exiting without executing anything.",
            file=sys.stderr,
        )
        return EXIT_NOT_CLAIMED
    return None


def _open_sink(args: argparse.Namespace) -> EventSink:
    if args.control_plane:
        return GrpcEventSink(
            args.control_plane, credential=_run_credential(args), tls=client_tls_from_args(args)
        )
    return JsonLinesEventSink(path=args.events_file) if args.events_file else JsonLinesEventSink()


def _run_credential(args: argparse.Namespace) -> str | None:
    """The run credential, from ``--run-credential-file`` or else ``PARTITA_RUN_CREDENTIAL``."""
    if args.run_credential_file:
        with open(args.run_credential_file, encoding="utf-8") as file:
            return file.read().strip() or None
    return os.environ.get("PARTITA_RUN_CREDENTIAL") or None

"""``partita control-plane``: serve the control plane (API, planner, run queue, monitor)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from code_server.auth_token import TokenFileError
from code_server.client import CodeServerDeadlines
from code_server.tls import TlsConfigError
from control_plane.api.stream_hubs import DEFAULT_MAX_OPEN_STREAMS
from control_plane.app import (
    DEFAULT_AUDIT_RETENTION_DAYS,
    DEFAULT_DATABASE_URL,
    DEFAULT_PORT,
    ControlPlane,
    ControlPlaneConfig,
)
from control_plane.auth.identity import Role
from control_plane.automation.evaluation import DEFAULT_EVALUATION_TIMEOUT
from control_plane.cli.secret_options import (
    add_database_arguments,
    add_worker_env_argument,
    database_url,
)
from control_plane.cli.transport_security import (
    add_transport_security_arguments,
    transport_security_config,
)
from control_plane.runs.credentials import RunSecretUnusable
from control_plane.storage import StorageFault
from launcher.base import LauncherError, RunLauncher

LAUNCHER_ENV = "PARTITA_LAUNCHER"
K8S_CONFIG_ENV = "PARTITA_K8S_CONFIG"
EVALUATION_TIMEOUT_ENV = "PARTITA_EVALUATION_TIMEOUT"
CODE_SERVER_DEADLINE_ENV = "PARTITA_CODE_SERVER_DEADLINE"
RUN_SECRET_FILE_ENV = "PARTITA_RUN_SECRET_FILE"
#: Beyond a day a deadline bounds nothing an operator would wait for.
_MAX_SECONDS = 86_400.0
_DEFAULT_DEADLINES = CodeServerDeadlines()


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("control-plane", help="Serve the control plane.", description=__doc__)
    add_database_arguments(parser, DEFAULT_DATABASE_URL)
    add_worker_env_argument(parser)
    parser.add_argument(
        "--code-server",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a code location and its code server (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--advertised-address", help="HOST:PORT run workers report to (default: --host:--port)"
    )
    parser.add_argument(
        "--launcher",
        choices=["local", "k8s"],
        default=os.environ.get(LAUNCHER_ENV, "local"),
        help=f"how runs start: local processes, or a Kubernetes Job each (or ${LAUNCHER_ENV})",
    )
    parser.add_argument(
        "--k8s-config",
        default=os.environ.get(K8S_CONFIG_ENV),
        metavar="FILE",
        help=f"Kubernetes launcher settings, YAML (or ${K8S_CONFIG_ENV}); see docs/kubernetes.md",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file for the k8s launcher (default: in-cluster, else ~/.kube/config)"
    )
    parser.add_argument("--k8s-context", help="kubeconfig context for the k8s launcher")
    parser.add_argument("--max-concurrent-runs", type=int, default=10)
    parser.add_argument(
        "--max-open-streams",
        type=positive_count,
        default=DEFAULT_MAX_OPEN_STREAMS,
        metavar="N",
        help="open streams (backfill watches, log follows) served at once; one more is refused with "
        f"RESOURCE_EXHAUSTED while unary calls go on (default {DEFAULT_MAX_OPEN_STREAMS:,})",
    )
    parser.add_argument(
        "--evaluation-timeout",
        type=positive_seconds,
        default=os.environ.get(EVALUATION_TIMEOUT_ENV, DEFAULT_EVALUATION_TIMEOUT),
        metavar="SECONDS",
        help=f"how long a sensor or schedule may run before its tick fails (default {DEFAULT_EVALUATION_TIMEOUT:g}; "
        f"env {EVALUATION_TIMEOUT_ENV})",
    )
    parser.add_argument(
        "--code-server-deadline",
        type=positive_seconds,
        default=os.environ.get(CODE_SERVER_DEADLINE_ENV, _DEFAULT_DEADLINES.definitions),
        metavar="SECONDS",
        help="how long a code server may take to list its definitions before its location shows as "
        f"unavailable (default {_DEFAULT_DEADLINES.definitions:g}; GetServerInfo gets at most "
        f"{_DEFAULT_DEADLINES.server_info:g}; env {CODE_SERVER_DEADLINE_ENV})",
    )
    parser.add_argument(
        "--audit-retention-days",
        type=retention_days,
        default=DEFAULT_AUDIT_RETENTION_DAYS,
        metavar="DAYS",
        help="how long audit events (every mutating call) are kept; older ones are deleted hourly "
        f"(default {DEFAULT_AUDIT_RETENTION_DAYS:g})",
    )
    add_transport_security_arguments(parser)
    parser.add_argument(
        "--run-secret-file",
        default=os.environ.get(RUN_SECRET_FILE_ENV) or None,
        metavar="FILE",
        help="file holding the secret run credentials are minted under, shared by every control plane "
        f"of the database (default: one generated once and kept in the database; env {RUN_SECRET_FILE_ENV})",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve every caller as an anonymous admin, with no token (only on a trusted network; "
        "see docs/security.md)",
    )
    parser.add_argument(
        "--tls-client-role",
        action="append",
        default=[],
        metavar="CN=ROLE",
        help="give a verified client certificate with this common name a role: viewer, operator or "
        "admin (repeatable; needs mutual TLS)",
    )
    parser.set_defaults(handler=run_command)


def parse_certificate_roles(values: list[str]) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    for value in values:
        name, sep, label = value.rpartition("=")
        role = Role.__members__.get(label.upper())
        if not sep or not name or role is None:
            raise SystemExit(f"error: --tls-client-role takes CN=viewer|operator|admin, got {value[:200]!r}")
        roles[name.removeprefix("CN=")] = role
    return roles


def positive_count(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number from 1 to 1,000,000")
    return int(value)


def retention_days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days") from None
    if not 0 < days <= 36_500:
        raise argparse.ArgumentTypeError(f"{value!r}: give a number of days above 0 and at most 36,500")
    return days


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds <= _MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a number of seconds above 0 and at most {_MAX_SECONDS:g}"
        )
    return seconds


def code_server_deadlines(definitions: float) -> CodeServerDeadlines:
    """The deadlines ``--code-server-deadline`` asks for: it bounds listing definitions, and the
    quick GetServerInfo never gets longer than its own default."""
    return CodeServerDeadlines(
        definitions=definitions, server_info=min(definitions, _DEFAULT_DEADLINES.server_info)
    )


def parse_code_servers(values: list[str]) -> dict[str, str]:
    servers: dict[str, str] = {}
    for value in values:
        name, sep, address = value.partition("=")
        if not sep or not name or ":" not in address:
            raise SystemExit(f"error: --code-server takes NAME=HOST:PORT, got {value!r}")
        servers[name] = address
    return servers


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        security = transport_security_config(args)
    except TlsConfigError as error:
        raise SystemExit(f"error: {error}") from error
    config = ControlPlaneConfig(
        database_url=database_url(args),
        code_servers=parse_code_servers(args.code_server),
        host=args.host,
        port=args.port,
        advertised_address=args.advertised_address,
        max_concurrent_runs=args.max_concurrent_runs,
        max_open_streams=args.max_open_streams,
        evaluation_timeout_seconds=float(args.evaluation_timeout),
        code_server_deadlines=code_server_deadlines(float(args.code_server_deadline)),
        audit_retention_days=args.audit_retention_days,
        run_secret_file=args.run_secret_file,
        **security,
        insecure_no_auth=args.insecure_no_auth,
        certificate_roles=parse_certificate_roles(args.tls_client_role),
        worker_env=tuple(args.worker_env),
    )
    try:
        control_plane = ControlPlane(config, launcher=build_launcher(args))
    except TokenFileError as error:
        raise SystemExit(f"error: {error}") from error
    except RunSecretUnusable as error:
        print(f"partita control-plane: {error}", file=sys.stderr)
        return 2
    except StorageFault as error:  # the message names the database (never its password) and the fault
        raise SystemExit(f"error: {error}") from None
    control_plane.start()
    if not args.insecure_no_auth and not control_plane.api_tokens.any_exists():
        logging.getLogger("partita.control_plane").warning(
            "No API token exists yet, so no call can succeed: create the first admin token with "
            "`partita tokens create-admin NAME --db URL` (see docs/security.md)."
        )
    print(f"partita control-plane listening on {control_plane.address}", flush=True)
    serve_until_signalled(control_plane)
    return 0


def build_launcher(args: argparse.Namespace) -> RunLauncher | None:
    """The launcher ``--launcher`` names; None for the control plane's default (local processes)."""
    if args.launcher != "k8s":
        return None
    # Imported here: only a control plane that launches Jobs needs the kubernetes client.
    from launcher.k8s import K8sConfigError, K8sLauncherConfig, KubernetesRunLauncher

    try:
        settings = K8sLauncherConfig.from_file(args.k8s_config) if args.k8s_config else K8sLauncherConfig()
        return KubernetesRunLauncher.from_environment(
            settings, kubeconfig=args.kubeconfig, context=args.k8s_context
        )
    except (K8sConfigError, LauncherError) as error:
        raise SystemExit(f"error: {error}") from error


def serve_until_signalled(control_plane: ControlPlane) -> None:
    stopped = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    stopped.wait()
    control_plane.stop()

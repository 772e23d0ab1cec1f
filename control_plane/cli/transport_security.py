"""The transport-security flags of ``partita control-plane``: TLS of its three connections and the
code servers' token.

- ``--tls-cert/--tls-key/--tls-client-ca``: what the control plane serves (clients and workers connect);
- ``--code-server-tls-*`` and ``--code-server-token-file``: how it connects to its code servers;
- ``--worker-tls-*``: what its run workers trust and present when they report, as paths *the worker*
  sees (the same files for local runs; where a Secret is mounted in a Kubernetes Job).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from code_server.auth_token import TOKEN_FILE_ENV
from code_server.tls_flags import (
    add_client_tls_arguments,
    add_server_tls_arguments,
    client_tls_from_args,
    server_tls_from_args,
)

CODE_SERVER_TLS_ENV_PREFIX = "PARTITA_CODE_SERVER_TLS"
WORKER_TLS_ENV_PREFIX = "PARTITA_WORKER_TLS"


def add_transport_security_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_tls_arguments(parser)
    code_servers = parser.add_argument_group("connections to code servers")
    add_client_tls_arguments(
        code_servers, prefix="code-server-tls", env_prefix=CODE_SERVER_TLS_ENV_PREFIX, what="each code server"
    )
    code_servers.add_argument(
        "--code-server-token-file",
        default=os.environ.get(TOKEN_FILE_ENV),
        metavar="FILE",
        help="send the token in FILE to code servers (their --auth-token-file; re-read when it changes; "
        f"or ${TOKEN_FILE_ENV})",
    )
    workers = parser.add_argument_group("run workers' connection back (paths as the worker sees them)")
    add_client_tls_arguments(
        workers, prefix="worker-tls", env_prefix=WORKER_TLS_ENV_PREFIX, what="the control plane"
    )


def transport_security_config(args: argparse.Namespace) -> dict[str, Any]:
    """``ControlPlaneConfig`` fields from the flags; raises ``TlsConfigError`` naming a wrong one.

    Worker paths are not read here (they may exist only inside a Job's pod): only their shape is checked.
    """
    return {
        "tls": server_tls_from_args(args),
        "code_server_tls": client_tls_from_args(
            args, prefix="code-server-tls", env_prefix=CODE_SERVER_TLS_ENV_PREFIX
        ),
        "code_server_token_file": args.code_server_token_file or None,
        "worker_tls": client_tls_from_args(
            args, prefix="worker-tls", env_prefix=WORKER_TLS_ENV_PREFIX, read_files=False
        ),
    }

"""The command-line flags of TLS, the same in every ``partita`` command that serves or connects.

A server gets ``--tls-cert``, ``--tls-key`` and ``--tls-client-ca``; a client gets ``--tls-ca``,
``--tls-cert``, ``--tls-key`` and ``--tls-server-name`` (the control plane's code-server client the
same under ``--code-server-tls-*``). Every flag falls back to an environment variable, named in its
help, so a Kubernetes manifest or a shell profile can set it once.
"""

from __future__ import annotations

import argparse
import os

from code_server.tls import (
    SERVER_CERT_ENV,
    SERVER_CLIENT_CA_ENV,
    SERVER_KEY_ENV,
    ClientTls,
    ServerTls,
)


def add_server_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert``, ``--tls-key``, ``--tls-client-ca`` (or ``$PARTITA_SERVER_TLS_*``)."""
    group = parser.add_argument_group("TLS (re-read when the files change)")
    group.add_argument(
        "--tls-cert",
        default=os.environ.get(SERVER_CERT_ENV),
        metavar="PEM",
        help=f"serve TLS with this certificate (chain) file (or ${SERVER_CERT_ENV})",
    )
    group.add_argument(
        "--tls-key",
        default=os.environ.get(SERVER_KEY_ENV),
        metavar="PEM",
        help=f"the certificate's private key (or ${SERVER_KEY_ENV})",
    )
    group.add_argument(
        "--tls-client-ca",
        default=os.environ.get(SERVER_CLIENT_CA_ENV),
        metavar="PEM",
        help=f"require client certificates issued by this CA: mutual TLS (or ${SERVER_CLIENT_CA_ENV})",
    )


def server_tls_from_args(args: argparse.Namespace) -> ServerTls | None:
    """Raises ``TlsConfigError`` naming the flag or file that is wrong."""
    return ServerTls.from_settings(args.tls_cert, args.tls_key, args.tls_client_ca)


def add_client_tls_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    prefix: str = "tls",
    env_prefix: str = "PARTITA_TLS",
    what: str = "",
) -> None:
    """``--{prefix}-ca``, ``-cert``, ``-key``, ``-server-name`` (or ``${env_prefix}_*``)."""
    target = what or "the server"
    flags = (
        ("ca", "CA", "PEM", f"trust {target}'s certificate only if this CA issued it (TLS)"),
        ("cert", "CERT", "PEM", f"client certificate to present to {target} (mutual TLS)"),
        ("key", "KEY", "PEM", "the client certificate's private key"),
        (
            "server-name",
            "SERVER_NAME",
            "NAME",
            f"name to check {target}'s certificate against, if not the address's host",
        ),
    )
    for suffix, env_suffix, metavar, text in flags:
        env = f"{env_prefix}_{env_suffix}"
        parser.add_argument(
            f"--{prefix}-{suffix}",
            dest=f"{prefix.replace('-', '_')}_{suffix.replace('-', '_')}",
            metavar=metavar,
            help=f"{text} (or ${env})",
        )


def client_tls_from_args(
    args: argparse.Namespace,
    *,
    prefix: str = "tls",
    env_prefix: str = "PARTITA_TLS",
    read_files: bool = True,
) -> ClientTls | None:
    """The client settings of the flags, each falling back to its environment variable.

    Read at call time (not as argparse defaults) so that a parent parser shared by many subcommands
    sees the environment of the process that runs, as tests and wrappers set it.
    """
    dest = prefix.replace("-", "_")

    def value(suffix: str, env_suffix: str) -> str | None:
        given: str | None = getattr(args, f"{dest}_{suffix}", None)
        return given or os.environ.get(f"{env_prefix}_{env_suffix}") or None

    return ClientTls.from_settings(
        value("ca", "CA"),
        value("cert", "CERT"),
        value("key", "KEY"),
        value("server_name", "SERVER_NAME"),
        flag=f"--{prefix}",
        read_files=read_files,
    )

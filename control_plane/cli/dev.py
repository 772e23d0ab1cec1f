"""``partita dev``: the embedded default in one command.

A code server subprocess for your module, and the control plane on SQLite with the local launcher,
in this process, on loopback only. It makes an admin API token and writes it to a file only you can
read, where the CLI on this machine finds it. Stop with Ctrl-C; the database file keeps every
backfill for next time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from code_server.server.spawn import spawn_code_server
from control_plane.app import DEFAULT_PORT, ControlPlane, ControlPlaneConfig
from control_plane.auth.dev_token import issue_dev_token, remove_dev_token
from control_plane.cli.secret_options import add_database_arguments, add_worker_env_argument, database_url
from control_plane.cli.serve import serve_until_signalled
from control_plane.storage import StorageFault

DEV_DATABASE_URL = "sqlite:///.partita/dev.db"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dev", help="Run code server + control plane locally (SQLite, local launcher).", description=__doc__
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-m", "--module", help="user module, e.g. my_pkg.defs")
    source.add_argument("-f", "--python-file", help="user file")
    parser.add_argument("--working-directory", default=os.getcwd())
    parser.add_argument("--location-name", help="default: the module or file name")
    add_database_arguments(parser, DEV_DATABASE_URL)
    add_worker_env_argument(parser)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="control plane port (0: a free one)")
    parser.add_argument("--max-concurrent-runs", type=int, default=4)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    name = args.location_name or args.module or os.path.splitext(os.path.basename(args.python_file))[0]
    code_server = spawn_code_server(
        module_name=args.module,
        python_file=args.python_file,
        working_directory=args.working_directory,
        location_name=name,
    )
    try:
        control_plane = ControlPlane(
            ControlPlaneConfig(
                database_url=database_url(args),
                code_servers={name: code_server.address},
                host="127.0.0.1",
                port=args.port,
                max_concurrent_runs=args.max_concurrent_runs,
                worker_env=tuple(args.worker_env),
            )
        )
        token_file = issue_dev_token(control_plane.api_tokens, control_plane.address)
        try:
            control_plane.start()
            print(
                f"partita dev: code location {name!r} served at {code_server.address}; "
                f"control plane listening on {control_plane.address}",
                flush=True,
            )
            print(f"partita dev: admin token for the CLI on this machine in {token_file}", flush=True)
            serve_until_signalled(control_plane)
        finally:
            remove_dev_token(token_file)
    except StorageFault as error:  # the message names the database (never its password) and the fault
        raise SystemExit(f"error: {error}") from None
    finally:
        code_server.stop()
    return 0

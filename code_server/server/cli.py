"""``partita code-server``: serve a user module's definitions over gRPC."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from code_server.auth_token import TOKEN_FILE_ENV, TokenFile, TokenFileError
from code_server.server.location import LoadedLocation, LoadTarget
from code_server.server.process import CodeServer
from code_server.tls import TlsConfigError
from code_server.tls_flags import add_server_tls_arguments, server_tls_from_args

#: The image runs of this location should use; read when --image is not given.
IMAGE_ENV = "PARTITA_CODE_SERVER_IMAGE"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "code-server",
        help="Serve a user module's assets, sensors and schedules over gRPC.",
        description=__doc__,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-m", "--module", help="user module to load, e.g. my_pkg.defs")
    source.add_argument("-f", "--python-file", help="user file to load")
    parser.add_argument("--working-directory", help="added to sys.path before loading (default: current)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000, help="0 picks a free port (printed on start)")
    parser.add_argument("--location-name", help="name of the code location (default: the module or file)")
    parser.add_argument("--image", default=os.environ.get(IMAGE_ENV, ""), help=f"run image (or ${IMAGE_ENV})")
    parser.add_argument(
        "--auth-token-file",
        default=os.environ.get(TOKEN_FILE_ENV),
        metavar="FILE",
        help="accept only calls carrying the token in FILE as `authorization: Bearer` (re-read when "
        f"it changes; health and reflection stay open; or ${TOKEN_FILE_ENV})",
    )
    add_server_tls_arguments(parser)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    working_directory = args.working_directory or os.getcwd()
    target = LoadTarget(
        module_name=args.module, python_file=args.python_file, working_directory=working_directory
    )
    location_name = (
        args.location_name or args.module or os.path.splitext(os.path.basename(args.python_file))[0]
    )
    try:
        tls = server_tls_from_args(args)
        token_file = TokenFile.from_setting(args.auth_token_file)
    except (TlsConfigError, TokenFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    location = LoadedLocation(target, location_name=location_name, image=args.image)
    server = CodeServer(location, host=args.host, port=args.port, tls=tls, token_file=token_file)
    server.start()
    status = "with a LOAD ERROR (reported on every call)" if location.load_error is not None else "loaded"
    # One parseable line: tests and `partita dev` read the port from it.
    print(f"partita code-server {location_name!r} listening on {server.address} ({status})", flush=True)
    server.serve_until_signalled()
    return 0

"""Command-line options that carry secrets or decide who sees them: the database URL, workers' environment.

A URL given as ``--db postgresql://user:password@...`` is readable by every user of the machine in
``/proc/PID/cmdline`` and ``ps``. So the URL can also come from a file (``--db-file``, or
``PARTITA_DATABASE_URL_FILE``: a mounted Kubernetes Secret) or from ``PARTITA_DATABASE_URL``, and a
password given with ``--db`` draws a warning that says how to avoid it.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from launcher.worker_env import WORKER_ENV_VARIABLE

DATABASE_ENV = "PARTITA_DATABASE_URL"
DATABASE_FILE_ENV = "PARTITA_DATABASE_URL_FILE"

logger = logging.getLogger("partita.control_plane.cli")


def add_database_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """``--db URL`` or ``--db-file FILE`` (one of them), else the variables, else ``default``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://... (default: the file named by "
        f"${DATABASE_FILE_ENV}, else ${DATABASE_ENV}, else {default}); a password here is visible in "
        "the process list: prefer --db-file or the variables",
    )
    group.add_argument(
        "--db-file",
        metavar="FILE",
        help=f"read the database URL from FILE (a mounted Secret; or ${DATABASE_FILE_ENV})",
    )
    parser.set_defaults(default_database_url=default)


def database_url(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str:
    """The database URL the options and variables give; SystemExit with what to fix when a file
    cannot be read or both variables are set."""
    environ = os.environ if environ is None else environ
    if args.db:
        if _has_password(args.db):
            logger.warning(
                "The database password given with --db is visible to every user of this machine in the "
                "process list; pass the URL with --db-file FILE or $%s instead",
                DATABASE_ENV,
            )
        return str(args.db)
    if args.db_file:
        return read_url_file(args.db_file, "--db-file")
    from_file, from_env = environ.get(DATABASE_FILE_ENV), environ.get(DATABASE_ENV)
    if from_file and from_env:
        raise SystemExit(f"error: both ${DATABASE_FILE_ENV} and ${DATABASE_ENV} are set; set only one")
    if from_file:
        return read_url_file(from_file, f"${DATABASE_FILE_ENV}")
    return from_env or str(args.default_database_url)


def read_url_file(path: str, option: str) -> str:
    """The URL in ``path``, surrounding whitespace removed (a Secret's trailing newline)."""
    try:
        url = Path(path).read_text().strip()
    except OSError as error:
        raise SystemExit(
            f"error: cannot read the database URL file {path} given by {option}: {error.strerror}"
        ) from None
    if not url:
        raise SystemExit(f"error: the database URL file {path} given by {option} is empty")
    return url


def _has_password(url: str) -> bool:
    try:
        return bool(make_url(url).password)
    except ArgumentError:
        return False


def add_worker_env_argument(parser: argparse.ArgumentParser) -> None:
    """``--worker-env NAME`` (repeatable): a variable local run workers may see (``launcher.worker_env``)."""
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME",
        help="a variable of this process that local run workers may see (repeatable; NAME* is a prefix; "
        f"also ${WORKER_ENV_VARIABLE}, comma-separated). Workers get only PATH, HOME, locale, TZ, "
        "TMPDIR, PYTHONPATH, VIRTUAL_ENV and these; never the database URL",
    )

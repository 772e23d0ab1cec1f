"""Where the control plane's database URL comes from: --db, --db-file, or the variables."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from control_plane.cli.secret_options import add_database_arguments, database_url

DEFAULT = "sqlite:///default.db"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_database_arguments(parser, DEFAULT)
    return parser.parse_args(argv)


def test_the_url_comes_from_the_flag_the_file_or_the_variables_in_that_order(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text("postgresql+psycopg://u:p@db/x\n")
    assert database_url(parse("--db", "sqlite:///a.db"), {}) == "sqlite:///a.db"
    assert database_url(parse("--db-file", str(url_file)), {}) == "postgresql+psycopg://u:p@db/x"
    assert (
        database_url(parse(), {"PARTITA_DATABASE_URL_FILE": str(url_file)}) == "postgresql+psycopg://u:p@db/x"
    )
    assert database_url(parse(), {"PARTITA_DATABASE_URL": "sqlite:///b.db"}) == "sqlite:///b.db"
    assert database_url(parse(), {}) == DEFAULT


def test_bad_sources_are_refused_with_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"cannot read the database URL file .*missing given by --db-file"):
        database_url(parse("--db-file", str(tmp_path / "missing")), {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SystemExit, match="is empty"):
        database_url(parse("--db-file", str(empty)), {})
    with pytest.raises(SystemExit, match="set only one"):
        database_url(parse(), {"PARTITA_DATABASE_URL_FILE": str(empty), "PARTITA_DATABASE_URL": "x"})
    with pytest.raises(SystemExit):
        parse("--db", "a", "--db-file", "b")  # one or the other


def test_the_config_repr_hides_the_url() -> None:
    from control_plane.app import ControlPlaneConfig

    assert "s3cret" not in repr(ControlPlaneConfig(database_url="postgresql+psycopg://u:s3cret@db/x"))

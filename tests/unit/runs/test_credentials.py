"""Run credentials: one per (run, attempt) under one secret, kept in the database or read from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.runs.credentials import (
    RunCredentialRefused,
    RunCredentials,
    RunSecretUnusable,
    is_run_credential,
)
from control_plane.storage import Database

SECRET = b"0123456789abcdef0123456789abcdef"


def test_a_credential_covers_its_run_attempt_only() -> None:
    credentials = RunCredentials(SECRET)
    credential = credentials.mint("run1", 1)
    assert is_run_credential(credential) and credential == credentials.mint("run1", 1)
    assert credentials.covers(credential, "run1", 1)
    for run_id, attempt in (("run2", 1), ("run1", 2), ("run11", 1), ("run", 11)):
        assert not credentials.covers(credential, run_id, attempt)
    for forged in (None, "", credential + "=", credential.upper(), "Bearer " + credential, "é" * 50):
        assert not credentials.covers(forged, "run1", 1)
    assert not RunCredentials(SECRET[::-1]).covers(credential, "run1", 1)
    with pytest.raises(RunCredentialRefused, match="PARTITA_RUN_CREDENTIAL"):
        credentials.check(None, "run1", 1)
    assert "0123" not in repr(credentials)


def test_the_generated_secret_is_made_once_and_kept_in_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'secrets.db'}"
    first = Database.open(url)
    second = Database.open(url)
    try:
        minted = RunCredentials.load(first).mint("run1", 1)
        assert RunCredentials.load(second).covers(minted, "run1", 1)
        assert RunCredentials.load(first).covers(minted, "run1", 1)
    finally:
        first.dispose()
        second.dispose()
    other = Database.open(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert not RunCredentials.load(other).covers(minted, "run1", 1)
    finally:
        other.dispose()


def test_a_secret_file_is_used_when_given_and_refused_when_unusable(tmp_path: Path) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'file.db'}")
    try:
        secret = tmp_path / "run-secret"
        secret.write_bytes(SECRET + b"\n")
        assert RunCredentials.load(database, secret_file=secret).mint("r", 1) == RunCredentials(SECRET).mint(
            "r", 1
        )
        with pytest.raises(RunSecretUnusable, match=r"missing.*--run-secret-file"):
            RunCredentials.load(database, secret_file=tmp_path / "missing")
        short = tmp_path / "short"
        short.write_text("tiny\n")
        with pytest.raises(RunSecretUnusable, match=r"short holds 4 bytes; it needs at least 16"):
            RunCredentials.load(database, secret_file=short)
    finally:
        database.dispose()

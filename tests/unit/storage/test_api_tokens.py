"""The API token store on SQLite and PostgreSQL: hashes only, unique names, revocation, scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane.auth.identity import Role
from control_plane.storage import Database
from control_plane.storage.api_tokens import (
    ApiTokenExists,
    ApiTokenNotFound,
    ApiTokenStore,
    secret_matches,
    split_token,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_token_is_found_by_its_id_and_matched_by_its_secret(database: Database) -> None:
    store = ApiTokenStore(database)
    created = store.create(
        "ci", Role.OPERATOR, locations=["b", "a"], expires_at=NOW + timedelta(days=1), now=NOW
    )
    parts = split_token(created.token)
    assert parts is not None
    record = store.get(parts[0])
    assert record is not None and record.name == "ci" and record.role is Role.OPERATOR
    assert record.locations == frozenset({"a", "b"})
    assert secret_matches(record, parts[1]) and not secret_matches(record, parts[1] + "x")
    assert parts[1] not in record.secret_sha256
    assert record.usable_at(NOW) and not record.usable_at(NOW + timedelta(days=2))


def test_names_are_unique_and_revocation_keeps_the_first_time(database: Database) -> None:
    store = ApiTokenStore(database)
    store.create("ci", Role.VIEWER, now=NOW)
    with pytest.raises(ApiTokenExists, match="'ci' exists already"):
        store.create("ci", Role.ADMIN, now=NOW)
    first = store.revoke("ci", now=NOW)
    assert store.revoke("ci", now=NOW + timedelta(hours=1)).revoked_at == first.revoked_at == NOW
    with pytest.raises(ApiTokenNotFound, match="partita tokens list"):
        store.revoke("nobody")
    assert [record.name for record in store.list()] == ["ci"]
    assert store.any_exists()


@pytest.mark.parametrize("text", ["", "pt_", "pt_abc", "pt__secret", "xx_abc_def", "pt_" + "a" * 33 + "_s"])
def test_malformed_tokens_split_to_nothing(text: str) -> None:
    assert split_token(text) is None

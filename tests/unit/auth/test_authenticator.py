"""``Authenticator`` over a real SQLite token store: tokens, certificates, expiry, the cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control_plane.auth.authenticator import AuthenticationFailed, Authenticator, CertificateWithoutRole
from control_plane.auth.identity import Identity, Role
from control_plane.cli.serve import parse_certificate_roles
from control_plane.storage import Database
from control_plane.storage.api_tokens import ApiTokenStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> ApiTokenStore:
    return ApiTokenStore(Database.open(f"sqlite:///{tmp_path / 'tokens.db'}"))


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def test_a_token_is_its_identity_and_its_use_is_noted(store: ApiTokenStore) -> None:
    clock = [NOW]
    authenticator = Authenticator(store, clock=lambda: clock[0])
    token = store.create("ci", Role.OPERATOR, locations=["x"], now=NOW).token
    identity = authenticator.identify(bearer(token), peer="ipv4:127.0.0.1:1")
    assert identity == Identity("ci", Role.OPERATOR, "token", frozenset({"x"}), "ipv4:127.0.0.1:1")
    assert store.list()[0].last_used_at == NOW


def test_expiry_is_checked_on_every_call_even_from_the_cache(store: ApiTokenStore) -> None:
    clock = [NOW]
    authenticator = Authenticator(store, clock=lambda: clock[0], cache_seconds=3600)
    token = store.create("short", Role.VIEWER, expires_at=NOW + timedelta(minutes=5), now=NOW).token
    authenticator.identify(bearer(token))
    clock[0] = NOW + timedelta(minutes=5)
    with pytest.raises(AuthenticationFailed, match="'short' expired at"):
        authenticator.identify(bearer(token))


def test_a_revocation_here_takes_effect_at_once(store: ApiTokenStore) -> None:
    authenticator = Authenticator(store, cache_seconds=3600)
    created = store.create("gone", Role.ADMIN)
    authenticator.identify(bearer(created.token))
    store.revoke("gone")
    authenticator.forget(created.record.id)
    with pytest.raises(AuthenticationFailed, match="'gone' was revoked"):
        authenticator.identify(bearer(created.token))


def test_a_certificate_needs_a_mapped_role_and_a_token_wins_over_it(store: ApiTokenStore) -> None:
    authenticator = Authenticator(store, certificate_roles=parse_certificate_roles(["CN=ops-bot=operator"]))
    context = {"x509_common_name": [b"ops-bot"]}
    assert authenticator.identify([], context) == Identity("ops-bot", Role.OPERATOR, "certificate")
    with pytest.raises(CertificateWithoutRole, match="--tls-client-role stranger="):
        authenticator.identify([], {"x509_common_name": [b"stranger"]})
    token = store.create("viewer", Role.VIEWER).token
    assert authenticator.identify(bearer(token), context).name == "viewer"
    with pytest.raises(AuthenticationFailed):
        authenticator.identify(bearer("pt_bad_token"), context)


def test_without_a_credential_the_message_says_how_to_get_one(store: ApiTokenStore) -> None:
    with pytest.raises(AuthenticationFailed, match=r"partita tokens create.*PARTITA_TOKEN"):
        Authenticator(store).identify([("other", "x")])


def test_insecure_no_auth_makes_everyone_an_anonymous_admin() -> None:
    identity = Authenticator(None, insecure_no_auth=True).identify(None, peer="p")
    assert identity == Identity("anonymous", Role.ADMIN, "anonymous", peer="p")


@pytest.mark.parametrize("value", ["alice", "alice=root", "=admin"])
def test_a_bad_certificate_role_mapping_is_named(value: str) -> None:
    with pytest.raises(SystemExit, match="--tls-client-role takes CN="):
        parse_certificate_roles([value])

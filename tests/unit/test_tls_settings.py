"""TLS and token settings that cannot work are refused when read, naming the flag or file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from code_server.auth_token import TokenFile, TokenFileError, presented_token
from code_server.tls import ClientTls, ServerTls, TlsConfigError, is_loopback
from tests.fixtures.pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_a_server_needs_both_a_certificate_and_its_key(pki: Pki) -> None:
    assert ServerTls.from_settings(None, None) is None
    with pytest.raises(TlsConfigError, match="--tls-key is missing"):
        ServerTls.from_settings(str(pki.server_cert), None)
    with pytest.raises(TlsConfigError, match="--tls-client-ca needs --tls-cert and --tls-key"):
        ServerTls.from_settings(None, None, str(pki.ca_file))


def test_a_key_of_another_certificate_is_refused_naming_both_files(pki: Pki) -> None:
    with pytest.raises(TlsConfigError, match="does not go with the certificate") as refused:
        ServerTls.from_settings(str(pki.server_cert), str(pki.client_key))
    assert str(pki.client_key) in str(refused.value) and str(pki.server_cert) in str(refused.value)


def test_missing_and_non_pem_files_are_named(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match=r"Cannot read the TLS CA file .*nope\.pem"):
        ClientTls.from_settings(ca=str(tmp_path / "nope.pem"))
    text = tmp_path / "ca.txt"
    text.write_text("not a certificate")
    with pytest.raises(TlsConfigError, match="holds no PEM block"):
        ClientTls.from_settings(ca=str(text))
    with pytest.raises(TlsConfigError, match="--code-server-tls-key is missing"):
        ClientTls.from_settings(cert=str(pki.client_cert), flag="--code-server-tls")


def test_client_settings_come_from_the_environment_and_go_back_into_it(pki: Pki) -> None:
    environ = {"PARTITA_TLS_CA": str(pki.ca_file), "PARTITA_TLS_SERVER_NAME": "cp.example"}
    tls = ClientTls.from_environment(environ)
    assert tls == ClientTls(ca=pki.ca_file, server_name="cp.example")
    assert tls.environment() == environ
    assert tls.channel_options() == [("grpc.ssl_target_name_override", "cp.example")]
    assert ClientTls.from_environment({}) is None
    with pytest.raises(TlsConfigError, match=r"\$PARTITA_TLS_KEY is missing"):
        ClientTls.from_environment({"PARTITA_TLS_CERT": str(pki.client_cert)})


def test_worker_paths_are_not_read_on_the_control_plane() -> None:
    tls = ClientTls.from_settings(ca="/var/run/partita/tls/ca.crt", read_files=False)
    assert tls is not None and tls.environment() == {"PARTITA_TLS_CA": "/var/run/partita/tls/ca.crt"}


def test_a_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token-0123456789\n")
    token = TokenFile(path)
    assert token.read() == "first-token-0123456789"
    path.write_text("second-token-0123456789-longer")
    assert token.read() == "second-token-0123456789-longer"


@pytest.mark.parametrize("content", ["", "short", "two words here and there"])
def test_an_unusable_token_is_refused_with_how_to_make_one(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(TokenFileError, match=r"secrets\.token_urlsafe"):
        TokenFile(path)
    with pytest.raises(TokenFileError, match="Cannot read the code-server token file"):
        TokenFile(tmp_path / "missing")


def test_the_bearer_token_is_read_from_metadata() -> None:
    assert presented_token([("authorization", "Bearer abc")]) == "abc"
    assert presented_token([("authorization", "bearer abc")]) == "abc"
    assert presented_token([("authorization", "Basic abc")]) is None
    assert presented_token(None) is None


def test_loopback_hosts() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "10.0.0.4", "::", "partita.svc"))


def test_the_servers_refuse_bad_tls_settings_before_serving(pki: Pki, tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "partita.cli"]
    half = ["--tls-cert", str(pki.server_cert)]
    control_plane = subprocess.run(
        [*cli, "control-plane", "--port", "0", "--db", f"sqlite:///{tmp_path / 'p.db'}", *half],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert control_plane.returncode != 0 and "--tls-key is missing" in control_plane.stderr
    bad_token = tmp_path / "token"
    bad_token.write_text("short")
    code_server = subprocess.run(
        [*cli, "code-server", "-m", "nothing_needed", "--port", "0", "--auth-token-file", str(bad_token)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert code_server.returncode == 2 and "at least 16 characters" in code_server.stderr

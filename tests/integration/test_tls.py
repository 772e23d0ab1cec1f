"""TLS on the three connections and the code server's token, over real sockets with a real CA.

Every refusal is checked where a person would see it: the status and message at the client, and
the control plane's storage unchanged.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from code_server.asset_key import AssetKey
from code_server.auth_token import TokenFile, bearer_metadata
from code_server.client import CodeServerClient, CodeServerError
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.tls import ClientTls, ServerTls
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.auth.identity import Role
from control_plane.client import ControlPlaneClient, ControlPlaneUnreachable, PermissionDeniedError
from control_plane.views import LaunchOptions
from partita.codeserver.v1 import code_server_pb2, code_server_pb2_grpc
from tests.fixtures.pki import Pki, make_pki
from tests.integration.conftest import ROOT, read_jsonl

pytestmark = pytest.mark.integration

SPEC = BackfillRequestSpec(
    asset_keys=(AssetKey("a"), AssetKey("b")),
    partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-03"),),
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", "ca")


@pytest.fixture
def other_pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "other-pki", "other")


@pytest.fixture
def token_path(tmp_path: Path) -> Path:
    path = tmp_path / "code-server-token"
    path.write_text(secrets.token_urlsafe(32) + "\n")
    return path


@pytest.fixture
def secure_code_server(output_file: Path, pki: Pki, token_path: Path) -> Iterator[SpawnedCodeServer]:
    """The backfill fixtures' code server, serving TLS and requiring the token."""
    server = spawn_code_server(
        module_name="tests.fixtures.backfill_location",
        working_directory=str(ROOT),
        location_name="tests",
        extra_arguments=[
            "--tls-cert",
            str(pki.server_cert),
            "--tls-key",
            str(pki.server_key),
            "--auth-token-file",
            str(token_path),
        ],
    )
    yield server
    server.stop()


def _unreachable(client: ControlPlaneClient) -> ControlPlaneUnreachable:
    with pytest.raises(ControlPlaneUnreachable) as raised:
        client.list_backfills()
    assert raised.value.status is grpc.StatusCode.UNAVAILABLE
    return raised.value


def test_a_backfill_runs_end_to_end_with_tls_on_all_three_connections_and_the_token(
    control_plane_factory: Callable[..., ControlPlane],
    secure_code_server: SpawnedCodeServer,
    pki: Pki,
    other_pki: Pki,
    token_path: Path,
    output_file: Path,
) -> None:
    plane = control_plane_factory(
        {"tests": secure_code_server.address},
        tls=pki.server(),
        code_server_tls=pki.client(),
        code_server_token_file=str(token_path),
        worker_tls=pki.client(),
    )
    # Plain text and a CA that did not issue the server's certificate are refused at the handshake,
    # and what they tried to launch is not written.
    with ControlPlaneClient(plane.address, retries=0) as plain:
        assert "--tls-ca" in str(_unreachable(plain))
        with pytest.raises(ControlPlaneUnreachable):
            plain.launch_backfill(SPEC, LaunchOptions(location="tests"))
    with ControlPlaneClient(plane.address, retries=0, tls=other_pki.client()) as wrong:
        message = str(_unreachable(wrong))
        assert "TLS handshake failed" in message and "CERTIFICATE_VERIFY_FAILED" in message
        with pytest.raises(ControlPlaneUnreachable):
            wrong.launch_backfill(SPEC, LaunchOptions(location="tests"))
    assert plane.list_backfills() == []

    with ControlPlaneClient(plane.address, tls=pki.client()) as client:
        launched = client.launch_backfill(SPEC, LaunchOptions(location="tests"))
        backfill_id = launched.backfill_id  # type: ignore[union-attr]
        # The workers claim and report over TLS: the backfill can only end through their reports.
        *_, final = client.watch_backfill(backfill_id)
        assert final.partition_counts.materialized == 6, final
    materialized = {(row["asset"], tuple(row["keys"])) for row in read_jsonl(output_file)}
    assert len(materialized) == 6
    assert all(run.status.value == "success" for run in plane.list_runs(backfill_id=backfill_id))


def test_mutual_tls_refuses_a_client_without_a_certificate_or_with_another_cas(
    control_plane_factory: Callable[..., ControlPlane], pki: Pki, other_pki: Pki, tmp_path: Path
) -> None:
    plane = control_plane_factory({}, tls=pki.server(mutual=True))
    with ControlPlaneClient(plane.address, tls=pki.client(with_cert=True)) as client:
        assert client.list_backfills().backfills == []
    with ControlPlaneClient(plane.address, retries=0, tls=pki.client()) as no_cert:
        _unreachable(no_cert)
    foreign = ClientTls(ca=pki.ca_file, cert=other_pki.client_cert, key=other_pki.client_key)
    with ControlPlaneClient(plane.address, retries=0, tls=foreign) as foreign_cert:
        _unreachable(foreign_cert)


def test_a_certificate_rotated_on_disk_is_served_without_a_restart(
    control_plane_factory: Callable[..., ControlPlane], tmp_path: Path
) -> None:
    old, new = make_pki(tmp_path / "old", "old"), make_pki(tmp_path / "new", "new")
    serving = tmp_path / "serving"
    serving.mkdir()
    cert, key = serving / "tls.crt", serving / "tls.key"
    shutil.copy(old.server_cert, cert)
    shutil.copy(old.server_key, key)
    plane = control_plane_factory({}, tls=ServerTls(cert, key))
    with ControlPlaneClient(plane.address, tls=old.client()) as client:
        client.list_backfills()

    # As a Secret volume rotates: new files, renamed into place.
    for source, target in ((new.server_cert, cert), (new.server_key, key)):
        staged = target.with_suffix(".new")
        shutil.copy(source, staged)
        staged.replace(target)

    with ControlPlaneClient(plane.address, tls=new.client()) as client:
        assert client.list_backfills().backfills == []
    with ControlPlaneClient(plane.address, retries=0, tls=old.client()) as stale:
        _unreachable(stale)


def test_the_code_server_refuses_calls_without_its_token(token_path: Path, tmp_path: Path) -> None:
    server = spawn_code_server(
        module_name="tests.fixtures.backfill_location",
        working_directory=str(ROOT),
        location_name="tests",
        extra_arguments=["--auth-token-file", str(token_path)],
    )
    try:
        address = server.address
        with CodeServerClient(address, retries=0) as anonymous:
            for call in (anonymous.server_info, anonymous.reload, lambda: anonymous.evaluate_sensor("s")):
                with pytest.raises(CodeServerError) as refused:
                    call()
                assert refused.value.status is grpc.StatusCode.UNAUTHENTICATED
                assert "--code-server-token-file" in str(refused.value)
        wrong_path = tmp_path / "wrong-token"
        wrong_path.write_text(secrets.token_urlsafe(32))
        with CodeServerClient(address, retries=0, token_file=TokenFile(wrong_path)) as wrong:
            with pytest.raises(CodeServerError) as refused:
                wrong.list_definitions()
            assert refused.value.status is grpc.StatusCode.UNAUTHENTICATED
        with CodeServerClient(address, token_file=TokenFile(token_path)) as trusted:
            assert trusted.server_info().location_name == "tests"
            assert len(trusted.list_definitions().assets) > 3
            assert trusted.reload().location_name == "tests"

        channel = grpc.insecure_channel(address)
        try:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = code_server_pb2_grpc.CodeServerStub(channel)
            with pytest.raises(grpc.RpcError) as raw:
                stub.EvaluateSensor(code_server_pb2.EvaluateSensorRequest(sensor_name="s"), timeout=5)
            assert raw.value.code() is grpc.StatusCode.UNAUTHENTICATED
            # A rotated token file is read again: the old token stops working, the new one works.
            old_token = token_path.read_text().strip()
            new_token = secrets.token_urlsafe(32)
            token_path.write_text(new_token)
            with pytest.raises(grpc.RpcError) as stale:
                stub.GetServerInfo(
                    code_server_pb2.GetServerInfoRequest(), metadata=bearer_metadata(old_token), timeout=5
                )
            assert stale.value.code() is grpc.StatusCode.UNAUTHENTICATED
            stub.GetServerInfo(
                code_server_pb2.GetServerInfoRequest(), metadata=bearer_metadata(new_token), timeout=5
            )
        finally:
            channel.close()
    finally:
        server.stop()


def test_the_cli_connects_with_tls_flags_or_variables_and_explains_a_refusal(
    control_plane_factory: Callable[..., ControlPlane], pki: Pki, other_pki: Pki
) -> None:
    plane = control_plane_factory({}, tls=pki.server(mutual=True))
    command = [sys.executable, "-m", "partita.cli", "backfill", "list", "--json"]
    command += ["--control-plane", plane.address]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARTITA_TLS")}

    def cli(*flags: str, **variables: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *flags],
            env={**environment, **variables},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    by_flags = cli(
        "--tls-ca", str(pki.ca_file), "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)
    )
    assert by_flags.returncode == 0, by_flags.stderr
    by_variables = cli(
        PARTITA_TLS_CA=str(pki.ca_file),
        PARTITA_TLS_CERT=str(pki.client_cert),
        PARTITA_TLS_KEY=str(pki.client_key),
    )
    assert by_variables.returncode == 0, by_variables.stderr
    refused = cli("--tls-ca", str(other_pki.ca_file))
    assert refused.returncode == 1
    assert "UNAVAILABLE" in refused.stderr and "TLS handshake failed" in refused.stderr
    half = cli("--tls-ca", str(pki.ca_file), "--tls-cert", str(pki.client_cert))
    assert half.returncode == 2 and "--tls-key is missing" in half.stderr


def test_a_control_plane_without_the_token_shows_why_on_the_location(
    control_plane_factory: Callable[..., ControlPlane], secure_code_server: SpawnedCodeServer, pki: Pki
) -> None:
    plane = control_plane_factory({"tests": secure_code_server.address}, code_server_tls=pki.client())
    [location] = plane.code_locations()
    assert location.status != "loaded"
    assert location.error is not None and "UNAUTHENTICATED" in location.error
    assert "--code-server-token-file" in location.error


def test_an_open_code_server_warns_unless_only_this_machine_can_reach_it(token_path: Path) -> None:
    def started_output(*arguments: str) -> str:
        server = spawn_code_server(
            module_name="tests.fixtures.backfill_location",
            working_directory=str(ROOT),
            extra_arguments=arguments,
        )
        server.stop()
        return "\n".join(server.output)

    assert "accepts calls (Reload, sensor evaluation) from anyone" in started_output("--host", "0.0.0.0")
    assert "from anyone" not in started_output("--host", "0.0.0.0", "--auth-token-file", str(token_path))
    assert "from anyone" not in started_output()


def test_a_client_certificate_mapped_to_a_role_authenticates_without_a_token(
    control_plane_factory: Callable[..., ControlPlane], pki: Pki, tmp_path: Path
) -> None:
    issued = pki.ca.issue_cert("viewer-bot@example.test", common_name="viewer-bot")
    cert, key = tmp_path / "viewer-bot.pem", tmp_path / "viewer-bot-key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    plane = control_plane_factory(
        {}, tls=pki.server(mutual=True), certificate_roles={"viewer-bot": Role.VIEWER}
    )
    viewer_tls = ClientTls(ca=pki.ca_file, cert=cert, key=key)
    with ControlPlaneClient(plane.address, tls=viewer_tls, token="", retries=0) as viewer:
        me = viewer.whoami()
        assert (me.name, me.kind) == ("viewer-bot", "certificate")
        assert viewer.list_backfills().backfills == []
        with pytest.raises(PermissionDeniedError, match="operator"):
            viewer.launch_backfill(
                BackfillRequestSpec(
                    asset_keys=(AssetKey("a"),),
                    partition_ranges=(PartitionKeyRange("2024-01-01", "2024-01-01"),),
                ),
                LaunchOptions(location="tests"),
            )
    # A certificate of the CA that no role names gets nothing.
    unmapped_tls = pki.client(with_cert=True)
    with (
        ControlPlaneClient(plane.address, tls=unmapped_tls, token="", retries=0) as unmapped,
        pytest.raises(PermissionDeniedError),
    ):
        unmapped.list_backfills()

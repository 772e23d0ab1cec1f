"""Authentication and authorization of the control plane's API, over real sockets.

One table-driven test covers every method of the ControlPlane service: no credential is
UNAUTHENTICATED, each role below the one a method needs is PERMISSION_DENIED naming it, and the
role it needs gets through (to whatever the handler then answers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane, ControlPlaneConfig
from control_plane.auth.identity import Role
from control_plane.auth.roles import METHOD_ROLES
from control_plane.client import (
    ControlPlaneClient,
    PermissionDeniedError,
    UnauthenticatedError,
)
from control_plane.storage.schema import api_tokens
from control_plane.views import LaunchOptions
from partita.controlplane.v1 import auth_pb2, control_plane_pb2, run_reporter_pb2, run_reporter_pb2_grpc
from tests.fixtures.holding_launcher import HoldingLauncher
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

SERVICE = control_plane_pb2.DESCRIPTOR.services_by_name["ControlPlane"]
METHODS = list(SERVICE.methods)
DENIED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("auth")
    control_plane = ControlPlane(
        ControlPlaneConfig(database_url=f"sqlite:///{directory / 'auth.db'}", port=0, idle_seconds=0.2),
        launcher=HoldingLauncher(),
    )
    control_plane.start()
    yield control_plane
    control_plane.stop()


@pytest.fixture(scope="module")
def tokens(plane: ControlPlane) -> dict[Role, str]:
    return {role: plane.api_tokens.create(f"table-{role.label}", role).token for role in Role}


def call(address: str, method_name: str, token: str | None) -> grpc.StatusCode:
    """Call ``method_name`` with an empty request; the status it ends with."""
    method = SERVICE.methods_by_name[method_name]
    request = message_factory.GetMessageClass(method.input_type)()
    response_class = message_factory.GetMessageClass(method.output_type)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    path = f"/{SERVICE.full_name}/{method.name}"
    with grpc.insecure_channel(address) as channel:
        try:
            if method.server_streaming:
                stream = channel.unary_stream(
                    path,
                    request_serializer=type(request).SerializeToString,
                    response_deserializer=response_class.FromString,
                )
                for _ in stream(request, metadata=metadata, timeout=10):
                    break
            else:
                channel.unary_unary(
                    path,
                    request_serializer=type(request).SerializeToString,
                    response_deserializer=response_class.FromString,
                )(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            details = error.details() or ""
            call.last_details = details  # type: ignore[attr-defined]
            return error.code()
    call.last_details = ""  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def test_every_method_of_the_service_has_a_role_rule() -> None:
    assert {method.name for method in METHODS} == set(METHOD_ROLES), (
        "Each ControlPlane RPC needs a rule in control_plane/auth/roles.py METHOD_ROLES"
    )


@pytest.mark.parametrize("method_name", [method.name for method in METHODS])
def test_every_rpc_is_authenticated_and_authorized_by_role(
    plane: ControlPlane, tokens: dict[Role, str], method_name: str
) -> None:
    needed = METHOD_ROLES[method_name]  # KeyError: a new RPC without a rule
    assert call(plane.address, method_name, None) is grpc.StatusCode.UNAUTHENTICATED
    assert "partita tokens create" in call.last_details  # type: ignore[attr-defined]
    assert "PARTITA_TOKEN" in call.last_details  # type: ignore[attr-defined]
    for role in Role:
        code = call(plane.address, method_name, tokens[role])
        if role < needed:
            assert code is grpc.StatusCode.PERMISSION_DENIED, (method_name, role)
            assert f"needs the {needed.label} role" in call.last_details  # type: ignore[attr-defined]
        else:
            assert code not in DENIED, (method_name, role, code, call.last_details)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "token",
    ["garbage", "pt_", "pt_0123456789abcdef_wrong", "Bearer", "x" * 5000],
)
def test_a_malformed_or_unknown_token_is_unauthenticated(
    plane: ControlPlane, tokens: dict[Role, str], token: str
) -> None:
    assert call(plane.address, "GetBackfill", token) is grpc.StatusCode.UNAUTHENTICATED
    assert "not valid" in call.last_details  # type: ignore[attr-defined]
    real_id = tokens[Role.ADMIN].split("_")[1]
    assert call(plane.address, "GetBackfill", f"pt_{real_id}_wrongsecret") is grpc.StatusCode.UNAUTHENTICATED


def test_expired_and_revoked_tokens_are_refused(plane: ControlPlane, tokens: dict[Role, str]) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = plane.api_tokens.create("expired", Role.ADMIN, expires_at=past).token
    assert call(plane.address, "ListBackfills", expired) is grpc.StatusCode.UNAUTHENTICATED
    assert "'expired' expired at" in call.last_details  # type: ignore[attr-defined]

    with ControlPlaneClient(plane.address, token=tokens[Role.ADMIN]) as admin:
        made = admin.create_api_token("soon-revoked", auth_pb2.ROLE_VIEWER, expires_in=timedelta(days=1))
        assert made.api_token.HasField("expires_at")
        with ControlPlaneClient(plane.address, token=made.token) as viewer:
            assert viewer.whoami().name == "soon-revoked"
            revoked = admin.revoke_api_token("soon-revoked")
            assert revoked.HasField("revoked_at")
            with pytest.raises(UnauthenticatedError, match="'soon-revoked' was revoked"):
                viewer.list_backfills()
        listed = {token.name: token for token in admin.list_api_tokens()}
        assert listed["soon-revoked"].HasField("revoked_at")
        assert listed["table-viewer"].HasField("last_used_at")


def test_tokens_are_stored_only_as_hashes_and_shown_once(
    plane: ControlPlane, tokens: dict[Role, str]
) -> None:
    with ControlPlaneClient(plane.address, token=tokens[Role.ADMIN]) as admin:
        made = admin.create_api_token("hashed", auth_pb2.ROLE_OPERATOR)
        secret = made.token.split("_", 2)[2]
        assert len(secret) >= 40
        with plane.database.read() as connection:
            rows = [dict(row) for row in connection.execute(sa.select(api_tokens)).mappings()]
        assert not any(secret in str(value) for row in rows for value in row.values())
        (row,) = [row for row in rows if row["name"] == "hashed"]
        assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
        # Listing never shows a secret either.
        assert all(secret not in str(token) for token in admin.list_api_tokens())
        with pytest.raises(Exception, match="exists already"):
            admin.create_api_token("hashed", auth_pb2.ROLE_VIEWER)


def test_whoami_names_the_identity(plane: ControlPlane, tokens: dict[Role, str]) -> None:
    with ControlPlaneClient(plane.address, token=tokens[Role.OPERATOR]) as client:
        identity = client.whoami()
    assert (identity.name, identity.role, identity.kind) == (
        "table-operator",
        auth_pb2.ROLE_OPERATOR,
        "token",
    )


def test_health_reflection_and_the_run_reporter_stay_open_to_api_token_rules(plane: ControlPlane) -> None:
    with grpc.insecure_channel(plane.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # The RunReporter is not gated by API tokens (run credentials are its own): an unknown run
        # is refused by the reporter itself, never as UNAUTHENTICATED by this interceptor.
        reporter = run_reporter_pb2_grpc.RunReporterStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            reporter.ClaimRun(
                run_reporter_pb2.ClaimRunRequest(
                    run_id="nope", attempt=1, worker=run_reporter_pb2.WorkerIdentity(worker_id="w")
                ),
                timeout=10,
            )
        assert raised.value.code() is not grpc.StatusCode.UNAUTHENTICATED


# --- location scoping and run-setting tags ------------------------------------------------------------

DAYS = PartitionKeyRange("2024-01-01", "2024-01-02")


@pytest.fixture
def scoped(
    control_plane_factory: Callable[..., ControlPlane], backfill_code_server: SpawnedCodeServer
) -> tuple[ControlPlane, str]:
    plane = control_plane_factory({"tests": backfill_code_server.address}, launcher=HoldingLauncher())
    spec = BackfillRequestSpec(asset_keys=(AssetKey("a"),), partition_ranges=(DAYS,))
    view = plane.launch_backfill(spec, LaunchOptions(location="tests"))
    return plane, view.record.id  # type: ignore[union-attr]


def _client(plane: ControlPlane, name: str, role: Role, locations: list[str] | None) -> ControlPlaneClient:
    return ControlPlaneClient(
        plane.address, token=plane.api_tokens.create(name, role, locations=locations).token
    )


def test_a_token_scoped_to_locations_acts_only_on_them(scoped: tuple[ControlPlane, str]) -> None:
    plane, backfill_id = scoped
    with _client(plane, "elsewhere", Role.OPERATOR, ["other"]) as elsewhere:
        with pytest.raises(PermissionDeniedError, match=r"only on code locations other.*'tests'"):
            elsewhere.get_backfill(backfill_id)
        with pytest.raises(PermissionDeniedError):
            elsewhere.cancel_backfill(backfill_id)
        with pytest.raises(PermissionDeniedError, match="without a code location"):
            elsewhere.list_backfills()
        with pytest.raises(PermissionDeniedError):
            elsewhere.list_backfills(location="tests")
        assert elsewhere.list_backfills(location="other").backfills == []
        with pytest.raises(PermissionDeniedError):
            list(elsewhere.watch_backfill(backfill_id))
        wait_until(lambda: bool(plane.list_runs(backfill_id=backfill_id)), "the backfill's first run")
        run_id = plane.list_runs(backfill_id=backfill_id)[0].id
        with pytest.raises(PermissionDeniedError):
            elsewhere.get_run(run_id)
        with pytest.raises(PermissionDeniedError):
            list(elsewhere.run_logs(run_id))
        assert [location.name for location in elsewhere.code_locations()] == ["tests"]
        assert list(elsewhere.whoami().locations) == ["other"]
    with _client(plane, "here", Role.OPERATOR, ["tests"]) as here:
        assert here.get_backfill(backfill_id).backfill_id == backfill_id
        assert here.get_run(run_id).run_id == run_id
        assert here.list_backfills(location="tests").backfills
    with _client(plane, "scoped-admin", Role.ADMIN, ["tests"]) as scoped_admin:
        with pytest.raises(PermissionDeniedError, match="beyond its own"):
            scoped_admin.create_api_token("wider", auth_pb2.ROLE_ADMIN)
        assert scoped_admin.create_api_token("narrow", auth_pb2.ROLE_VIEWER, locations=["tests"]).token


def test_only_an_admin_may_set_the_k8s_config_tag(scoped: tuple[ControlPlane, str]) -> None:
    plane, _ = scoped
    before = len(plane.list_backfills())
    spec = BackfillRequestSpec(asset_keys=(AssetKey("a"),), partition_ranges=(DAYS,))
    tags = {"partita/k8s-config": '{"service_account_name": "root"}'}
    with _client(plane, "op", Role.OPERATOR, None) as operator:
        with pytest.raises(PermissionDeniedError, match=r"partita/k8s-config.*admin role"):
            operator.launch_backfill(spec, LaunchOptions(location="tests", tags=tags))
        assert len(plane.list_backfills()) == before
        launched: Any = operator.launch_backfill(spec, LaunchOptions(location="tests", tags={"team": "data"}))
        assert launched.backfill_id
    with _client(plane, "root", Role.ADMIN, None) as admin:
        launched = admin.launch_backfill(spec, LaunchOptions(location="tests", tags=tags))
        assert dict(launched.tags)["partita/k8s-config"] == tags["partita/k8s-config"]


def test_the_launch_setting_tags_match_the_kubernetes_launcher() -> None:
    from control_plane.auth.roles import launch_setting_tags
    from launcher.k8s import K8S_CONFIG_TAG

    assert launch_setting_tags({K8S_CONFIG_TAG: "{}", "team": "x"}) == [K8S_CONFIG_TAG]


def test_without_auth_every_caller_is_an_anonymous_admin(
    control_plane_factory: Callable[..., ControlPlane], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="partita.control_plane"):
        plane = control_plane_factory({}, insecure_no_auth=True)
    assert "Authentication is OFF" in caplog.text
    with ControlPlaneClient(plane.address, token="") as client:
        identity = client.whoami()
        assert (identity.name, identity.role, identity.kind) == (
            "anonymous",
            auth_pb2.ROLE_ADMIN,
            "anonymous",
        )
        assert client.list_backfills().backfills == []

"""Fixtures that start real servers: a code server process and an in-process control plane."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from control_plane.app import ControlPlane, ControlPlaneConfig
from control_plane.auth.dev_token import issue_dev_token, write_private_file
from control_plane.client_auth import (
    HOME_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    dev_token_file,
    resolve_token,
    with_token,
)
from control_plane.views import BackfillView
from launcher.base import RunLauncher
from tests.fixtures.processes import kill_run_workers_of
from tests.kube_cluster.pytest_fixtures import kube_api  # noqa: F401  (the Kubernetes API server fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def output_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where fixture assets record what they materialized (inherited by run processes)."""
    path = tmp_path / "materialized.jsonl"
    monkeypatch.setenv("PARTITA_TEST_OUTPUT", str(path))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def backfill_code_server(output_file: Path) -> Iterator[SpawnedCodeServer]:
    server = spawn_code_server(
        module_name="tests.fixtures.backfill_location", working_directory=str(ROOT), location_name="tests"
    )
    yield server
    server.stop()


@pytest.fixture
def control_plane_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ControlPlane]]:
    """Start in-process control planes. Authentication is ON: each gets an admin token, written
    where ``partita dev`` writes its own (under a private $PARTITA_HOME), so the CLI and
    ``ControlPlaneClient`` find it by address; raw stubs add it with ``authorized_channel``.
    ``insecure_no_auth=True`` turns authentication off where a test needs that."""
    started: list[ControlPlane] = []
    #: One admin token per database: a control plane started again on it (read-only, say) reuses it.
    tokens: dict[str, str] = {}
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "partita-home"))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)

    def start(
        code_servers: dict[str, str], launcher: RunLauncher | None = None, **options: Any
    ) -> ControlPlane:
        interceptors = options.pop("interceptors", ())
        config = ControlPlaneConfig(
            database_url=options.pop("database_url", f"sqlite:///{tmp_path / 'partita.db'}"),
            code_servers=code_servers,
            port=options.pop("port", 0),
            idle_seconds=0.2,
            monitor_seconds=0.5,
            **options,
        )
        control_plane = ControlPlane(config, launcher=launcher, interceptors=interceptors)
        if not config.insecure_no_auth and config.database_url in tokens:
            write_private_file(dev_token_file(control_plane.address), tokens[config.database_url])
        elif not config.insecure_no_auth:
            path = issue_dev_token(control_plane.api_tokens, control_plane.address, revoke_earlier=False)
            tokens[config.database_url] = path.read_text()
        control_plane.start()
        started.append(control_plane)
        return control_plane

    yield start
    for control_plane in started:
        control_plane.stop()
        # Workers it launched that still wait for it would retry for their whole patience.
        kill_run_workers_of(control_plane.address)


def wait_for_end(control_plane: ControlPlane, backfill_id: str, timeout: float = 120.0) -> BackfillView:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = control_plane.get_backfill(backfill_id)
        if view.record.status.is_terminal:
            return view
        time.sleep(0.1)
    raise AssertionError(
        f"Backfill {backfill_id} did not end in {timeout}s: {control_plane.get_backfill(backfill_id)}"
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"Timed out after {timeout} s waiting until {what}")


def authorized_channel(address: str) -> grpc.Channel:
    """A channel to the control plane at ``address`` sending the admin token the factory made."""
    return with_token(grpc.insecure_channel(address), resolve_token(address))

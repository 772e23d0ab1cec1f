"""Least privilege: workers get a minimal environment; the database password is nowhere to be read.

Everything is real: run workers are ``partita execute-run`` processes whose environment is read from
/proc, and the control plane with a password in its PostgreSQL URL is a ``partita control-plane``
process whose command line, log output and errors are searched for the password.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from code_server.asset_key import AssetKey
from code_server.partitions.keys import PartitionKeyRange
from code_server.server.spawn import SpawnedCodeServer, spawn_code_server
from code_server.wire.automation import BackfillRequestSpec
from control_plane.app import ControlPlane
from control_plane.client import ControlPlaneClient
from control_plane.records import RunStatus
from control_plane.views import BackfillView, LaunchOptions
from launcher.worker_env import BASE_WORKER_ENV, WORKER_ENV_VARIABLE, is_allowed
from tests.fixtures.processes import ControlPlaneProcess, free_port, run_workers_of
from tests.integration.conftest import ROOT, wait_for_end, wait_until
from tests.unit.storage.conftest import _fresh_schema, postgres_server  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration
Factory = Callable[..., ControlPlane]
PASSWORD = "s3cret"


@pytest.fixture
def code_server(output_file: Path) -> Iterator[SpawnedCodeServer]:
    server = spawn_code_server(
        module_name="tests.fixtures.paced_location", working_directory=str(ROOT), location_name="tests"
    )
    yield server
    server.stop()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def gated_spec() -> BackfillRequestSpec:
    return BackfillRequestSpec(
        asset_keys=(AssetKey("gated"),), partition_ranges=(PartitionKeyRange("2024-03-01", "2024-03-01"),)
    )


def wait_for_worker(address: str) -> int:
    found: list[int] = []
    wait_until(lambda: bool(found.extend(run_workers_of(address)) or found), "the run worker started")
    return found[0]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_workers_environment_holds_no_database_url_and_only_what_the_allow_list_names(
    code_server: SpawnedCodeServer,
    control_plane_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = tmp_path / "gate"
    monkeypatch.setenv("PARTITA_TEST_GATE", str(gate))
    secret_url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/test"
    monkeypatch.setenv("PARTITA_DATABASE_URL", secret_url)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", "hunter2")
    monkeypatch.setenv("WAREHOUSE_REGION", "eu-west-1")
    # Only what this test names: the fixture's two settings, by the variable and by the flag's config.
    monkeypatch.setenv(WORKER_ENV_VARIABLE, "PARTITA_TEST_GATE,PARTITA_TEST_OUTPUT,PARTITA_*")
    plane = control_plane_factory({"tests": code_server.address}, worker_env=("WAREHOUSE_REGION",))
    view = plane.launch_backfill(gated_spec(), LaunchOptions(location="tests"))
    assert isinstance(view, BackfillView)

    environment = environ_of(wait_for_worker(plane.address))
    assert "PARTITA_DATABASE_URL" not in environment  # even though PARTITA_* is allowed
    assert all(PASSWORD not in value and "hunter2" not in value for value in environment.values())
    assert environment["WAREHOUSE_REGION"] == "eu-west-1"
    assert environment["PARTITA_TEST_GATE"] == str(gate)
    allowed = (*BASE_WORKER_ENV, "PARTITA_*", "WAREHOUSE_REGION", "PYTHONUNBUFFERED")
    assert [name for name in environment if not is_allowed(name, allowed)] == []
    # Besides the allowed variables of this process: only what the launcher sets for the run.
    assert environment.keys() <= {name for name in os.environ if is_allowed(name, allowed)} | {
        "PYTHONUNBUFFERED",
        "PARTITA_RUN_CREDENTIAL",
    }

    gate.touch()
    final = wait_for_end(plane, view.record.id, timeout=60)
    assert [run.status for run in plane.list_runs(backfill_id=view.record.id)] == [RunStatus.SUCCESS]
    assert final.record.status.is_terminal


@pytest.fixture
def secret_postgres_url(postgres_server: sa.Engine) -> Iterator[str]:  # noqa: F811
    """A fresh schema of the test server, reached with a password (the server trusts any)."""
    with _fresh_schema(postgres_server) as url:
        yield sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


@pytest.mark.postgres
def test_a_database_password_is_in_no_command_line_log_line_or_error(
    secret_postgres_url: str,
    code_server: SpawnedCodeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PARTITA_DATABASE_URL", raising=False)
    url_file = tmp_path / "database-url"
    url_file.write_text(secret_postgres_url + "\n")
    gate = tmp_path / "gate"
    port = free_port()
    log = tmp_path / "control-plane.log"
    process = ControlPlaneProcess(
        [
            "--db-file",
            str(url_file),
            "--code-server",
            f"tests={code_server.address}",
            "--port",
            str(port),
            "--insecure-no-auth",
        ],
        log,
        environment={"PARTITA_TEST_GATE": str(gate)},
    )
    address = f"127.0.0.1:{port}"
    with ControlPlaneClient(address, timeout=10) as client:
        process.start(client)
        try:
            assert process.process is not None
            command_line = Path(f"/proc/{process.process.pid}/cmdline").read_bytes()
            assert PASSWORD.encode() not in command_line
            assert str(url_file).encode() in command_line
            backfill = client.launch_backfill(gated_spec(), LaunchOptions(location="tests"))
            worker = wait_for_worker(address)
            assert PASSWORD.encode() not in Path(f"/proc/{worker}/cmdline").read_bytes()
            assert all(PASSWORD not in value for value in environ_of(worker).values())
            gate.touch()
            wait_until(
                lambda: client.get_backfill(backfill.backfill_id).status != backfill.status,
                "the backfill finished",
            )
        finally:
            process.stop()
    assert "listening on" in log.read_text()
    assert PASSWORD not in log.read_text()

    # An unreachable database: the error names where it is, and still not the password.
    url_file.write_text(sa.make_url(secret_postgres_url).set(port=free_port()).render_as_string(False))
    failed = subprocess.run(
        [sys.executable, "-m", "partita.cli", "control-plane", "--db-file", str(url_file), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "127.0.0.1" in output and "database" in output, output
    assert PASSWORD not in output, output


def test_a_password_given_with_db_draws_a_warning_that_says_how_to_avoid_it(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{free_port()}/test"
    failed = subprocess.run(
        [sys.executable, "-m", "partita.cli", "control-plane", "--db", url, "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode != 0
    assert "visible to every user of this machine" in failed.stderr and "--db-file" in failed.stderr
    assert PASSWORD not in failed.stderr


def test_an_unreadable_url_file_is_refused_with_its_name(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    failed = subprocess.run(
        [sys.executable, "-m", "partita.cli", "control-plane", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PARTITA_DATABASE_URL_FILE": str(missing)},
    )
    assert failed.returncode != 0
    assert f"cannot read the database URL file {missing} given by $PARTITA_DATABASE_URL_FILE" in failed.stderr

"""The CLI side of authentication, as a user meets it: real processes, real sockets.

``partita dev`` writes a private admin token the CLI beside it picks up; ``partita control-plane``
refuses callers without a token, takes its first one from ``partita tokens create-admin``, and serves
anonymous admins only with ``--insecure-no-auth``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.client import ControlPlaneClient
from tests.fixtures.processes import ROOT, ControlPlaneProcess, create_admin_token, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """A clean environment: its own $PARTITA_HOME, no token variables, no control-plane address."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PARTITA_TOKEN", "PARTITA_TOKEN_FILE", "PARTITA_CONTROL_PLANE"}
    }
    env["PARTITA_HOME"] = str(tmp_path / "home")
    return env


def partita(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partita.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def dev(environment: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "partita.cli", "dev", "-m", "tests.fixtures.backfill_location",
         "--location-name", "tests", "--port", "0", "--db", f"sqlite:///{tmp_path / 'dev.db'}"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    found: dict[str, str] = {}
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if match := re.search(r"control plane listening on (\S+)", line):
                found["address"] = match.group(1)
            if match := re.search(r"admin token for the CLI on this machine in (\S+)", line):
                found["file"] = match.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120) and "file" in found, "partita dev did not start"
        yield found["address"], Path(found["file"])
    finally:
        process.terminate()
        process.wait(30)


def test_partita_dev_writes_a_private_token_the_cli_picks_up(
    dev: tuple[str, Path], environment: dict[str, str]
) -> None:
    address, token_file = dev
    assert address.startswith("127.0.0.1:")
    assert token_file.is_relative_to(Path(environment["PARTITA_HOME"]))
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    env = {**environment, "PARTITA_CONTROL_PLANE": address}
    whoami = partita(env, "whoami", "--json")
    assert whoami.returncode == 0, whoami.stderr
    identity = json.loads(whoami.stdout)
    assert identity["role"] == "admin" and identity["kind"] == "token"
    assert identity["name"].startswith("partita-dev-")
    listed = partita(env, "backfill", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    # A token from the CLI works the same way, and an explicit empty token is refused.
    created = partita(env, "tokens", "create", "ci", "--role", "viewer", "--expires-in", "30d", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    assert partita(env, "whoami", "--token", token).stdout.startswith(
        "ci (token, viewer, all code locations)"
    )
    refused = partita({**env, "PARTITA_TOKEN": token}, "tokens", "list")
    assert refused.returncode == 1 and "needs the admin role" in refused.stderr
    assert partita(env, "tokens", "revoke", "ci").returncode == 0
    revoked = partita(env, "whoami", "--token", token)
    assert revoked.returncode == 1 and "was revoked" in revoked.stderr
    tokens = json.loads(partita(env, "tokens", "list", "--json").stdout)
    assert {entry["name"]: entry["revoked_at"] is not None for entry in tokens}["ci"]


def test_partita_dev_removes_its_token_when_it_stops(environment: dict[str, str], tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "partita.cli", "dev", "-m", "tests.fixtures.backfill_location",
         "--port", "0", "--db", f"sqlite:///{tmp_path / 'dev.db'}"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    token_file = None
    for line in process.stdout:
        if match := re.search(r"admin token for the CLI on this machine in (\S+)", line):
            token_file = Path(match.group(1))
            break
    assert token_file is not None and token_file.exists()
    address = token_file.name.replace("_", ":")
    assert partita({**environment, "PARTITA_CONTROL_PLANE": address}, "whoami").returncode == 0  # serving
    process.terminate()
    process.wait(30)
    assert not token_file.exists()


def test_the_control_plane_requires_a_token_and_takes_its_first_from_create_admin(
    environment: dict[str, str], tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'plane.db'}"
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = ControlPlaneProcess(
        ["--db", database_url, "--port", str(port)], tmp_path / "plane.log", environment=environment
    )
    try:
        process.start(ControlPlaneClient(address, token=""))
        assert "No API token exists yet" in process.log()
        env = {**environment, "PARTITA_CONTROL_PLANE": address}
        refused = partita(env, "backfill", "list")
        assert refused.returncode == 1
        assert "No credential was sent" in refused.stderr and "partita tokens create" in refused.stderr
        token = create_admin_token(database_url, "root")
        assert token.startswith("pt_")
        token_file = tmp_path / "token"
        token_file.write_text(token + "\n")
        whoami = partita({**env, "PARTITA_TOKEN_FILE": str(token_file)}, "whoami")
        assert whoami.returncode == 0 and whoami.stdout.startswith("root (token, admin")
        missing = partita({**env, "PARTITA_TOKEN_FILE": str(tmp_path / "nope")}, "whoami")
        assert missing.returncode == 2 and "Cannot read the token file" in missing.stderr
        again = partita(env, "tokens", "create-admin", "root", "--db", database_url)
        assert again.returncode == 2 and "exists already" in again.stderr
    finally:
        process.stop()


def test_insecure_no_auth_warns_and_serves_anonymous_admins(
    environment: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = ControlPlaneProcess(
        ["--db", f"sqlite:///{tmp_path / 'open.db'}", "--port", str(port), "--insecure-no-auth"],
        tmp_path / "open.log",
        environment=environment,
    )
    try:
        process.start(ControlPlaneClient(address, token=""))
        assert "Authentication is OFF (--insecure-no-auth)" in process.log()
        whoami = partita({**environment, "PARTITA_CONTROL_PLANE": address}, "whoami", "--json")
        assert json.loads(whoami.stdout)["name"] == "anonymous"
        assert json.loads(whoami.stdout)["role"] == "admin"
    finally:
        process.stop()

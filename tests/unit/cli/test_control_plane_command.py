"""``partita control-plane`` refuses settings it cannot use (a Kubernetes launcher it cannot set up, a bad
timeout), saying why, before serving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def control_plane(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "partita.cli", "control-plane", "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_bad_launcher_settings_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    settings = tmp_path / "k8s.yaml"
    settings.write_text("defaults:\n  memory: 8Gi\n")
    result = control_plane(
        "--db", f"sqlite:///{tmp_path / 'p.db'}", "--launcher", "k8s", "--k8s-config", str(settings)
    )
    assert result.returncode != 0
    assert f"{settings}: defaults: unknown setting(s) memory" in result.stderr


def test_a_missing_kubeconfig_says_what_to_do(tmp_path: Path) -> None:
    result = control_plane(
        "--db", f"sqlite:///{tmp_path / 'p.db'}", "--launcher", "k8s", "--kubeconfig", str(tmp_path / "nope")
    )
    assert result.returncode != 0
    assert "Cannot configure the Kubernetes client" in result.stderr and "--kubeconfig" in result.stderr


def test_an_evaluation_timeout_that_is_not_a_positive_number_is_refused(tmp_path: Path) -> None:
    for value in ("0", "soon"):
        result = control_plane("--db", f"sqlite:///{tmp_path / 'p.db'}", "--evaluation-timeout", value)
        assert result.returncode == 2
        assert "--evaluation-timeout" in result.stderr and repr(value) in result.stderr


def test_an_unusable_run_secret_file_names_the_file_and_never_echoes_the_secret(tmp_path: Path) -> None:
    missing = tmp_path / "missing-secret"
    result = control_plane("--db", f"sqlite:///{tmp_path / 'p.db'}", "--run-secret-file", str(missing))
    assert result.returncode == 2
    assert f"Cannot read the run secret file {missing}" in result.stderr
    short = tmp_path / "short-secret"
    short.write_text("hunter2\n")
    result = control_plane("--db", f"sqlite:///{tmp_path / 'p.db'}", "--run-secret-file", str(short))
    assert result.returncode == 2
    assert "holds 7 bytes; it needs at least 16" in result.stderr and "hunter2" not in result.stderr

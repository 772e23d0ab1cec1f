"""The ``kube_api`` fixture: a started KubeApiServer per test (import it into a conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_cluster.server import KUBECTL, KubeApiServer

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["KUBECTL", "kube_api"]


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApiServer]:
    with KubeApiServer(workdir=tmp_path / "kube", node_working_directory=ROOT) as server:
        yield server

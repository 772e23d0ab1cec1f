"""The layering rules of docs/architecture.md, checked on the source (like an import-linter contract)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module imported by each file of ``package`` (absolute names, including lazy imports)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "_pb2" in path.name:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path} imports {name}"
        for path, names in imports_of(package).items()
        for name in names
        if name.split(".")[0] in forbidden or name in forbidden
    )


def test_sdk_and_code_server_never_import_the_control_plane_or_launchers() -> None:
    assert (
        offenders("code_server", ("control_plane", "launcher", "kubernetes", "sqlalchemy", "alembic")) == []
    )


def test_control_plane_never_loads_user_code() -> None:
    # It may use the pure SDK (partitions, graph, wire) but never import a user's module.
    assert (
        offenders(
            "control_plane", ("examples", "tests", "code_server.loading", "code_server.server.location")
        )
        == []
    )


@pytest.mark.parametrize("package", ["code_server", "control_plane", "partita"])
def test_only_kubernetes_launchers_import_kubernetes(package: str) -> None:
    assert offenders(package, ("kubernetes",)) == []
    launcher_files = imports_of("launcher")
    assert all(
        "kubernetes" not in {n.split(".")[0] for n in names}
        for path, names in launcher_files.items()
        if "/k8s" not in path
    )


def test_sdk_public_names_are_pinned() -> None:
    import code_server

    assert sorted(code_server.__all__) == code_server.__all__
    assert set(code_server.__all__) >= {
        "AssetExecutionContext", "AssetIn", "AssetKey", "BackfillPolicy", "DailyPartitionsDefinition",
        "DefaultSensorStatus", "RunRequest", "StaticPartitionMapping", "StaticPartitionsDefinition", "asset",
        "schedule", "sensor", "Definitions", "HourlyPartitionsDefinition", "MultiPartitionsDefinition",
        "TimeWindowPartitionMapping", "PartitionKeyRange", "TimeWindow", "SkipReason", "SensorResult",
    }  # fmt: skip
    for name in code_server.__all__:
        assert hasattr(code_server, name), name

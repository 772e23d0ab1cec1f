"""The deployment manifests (k8s/) and Dockerfiles (docker/): valid for Kubernetes, least privilege,
and wired the way the control plane expects."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
#: The oldest and the newest Kubernetes versions kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.25.0", latest_version())
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed: cannot render kustomizations"
)


def object_files() -> list[Path]:
    """YAML files holding whole Kubernetes objects (not kustomizations, patches or launcher settings)."""
    return [
        path
        for path in sorted((ROOT / "k8s").rglob("*.yaml"))
        if path.name != "kustomization.yaml"
        and not path.name.endswith("-patch.yaml")
        and path.name != "launcher-config.yaml"
    ]


def render(kustomization: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / kustomization)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def example() -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: cannot render kustomizations")
    return render("k8s/overlays/example")


def of_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", object_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_manifest_validates_strictly(path: Path, version: str) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, version, strict=True)


@needs_kubectl
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", ["k8s/base", "k8s/overlays/example"])
def test_rendered_kustomizations_validate_strictly(kustomization: str, version: str) -> None:
    docs = render(kustomization)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_launcher_gets_exactly_the_permissions_it_needs_in_one_namespace(
    example: list[dict[str, Any]],
) -> None:
    assert not [doc for doc in example if doc["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = of_kind(example, "Role", "partita-run-launcher")
    rules = {
        (rule["apiGroups"][0], resource): sorted(rule["verbs"])
        for rule in role["rules"]
        for resource in rule["resources"]
    }
    assert rules == {
        ("batch", "jobs"): ["create", "delete", "get", "list", "patch", "watch"],
        ("", "pods"): ["get", "list", "watch"],
        ("", "pods/log"): ["get"],
        ("", "events"): ["get", "list", "watch"],
    }
    binding = of_kind(example, "RoleBinding", "partita-run-launcher")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "partita-control-plane", "namespace": "partita"}
    ]
    worker = of_kind(example, "ServiceAccount", "partita-run-worker")
    assert worker["automountServiceAccountToken"] is False


def test_every_container_has_resources_probes_and_runs_as_non_root(example: list[dict[str, Any]]) -> None:
    deployments = [doc for doc in example if doc["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "partita-control-plane", "partita-code-analytics", "partita-code-marketing",
    }  # fmt: skip
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            assert "grpc" in container["readinessProbe"] and "grpc" in container["livenessProbe"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert re.match(r"^registry\.example\.com/.+:\d", container["image"]), container["image"]


def test_the_control_plane_launches_jobs_and_reads_its_database_url_only_from_a_secret(
    example: list[dict[str, Any]],
) -> None:
    container = of_kind(example, "Deployment", "partita-control-plane")["spec"]["template"]["spec"][
        "containers"
    ][0]
    args = container["args"]
    assert (
        args[0] == "control-plane"
        and "--launcher=k8s" in args
        and "--k8s-config=/etc/partita/k8s.yaml" in args
    )
    assert "--code-server=analytics=partita-code-analytics:4000" in args
    assert "--code-server=marketing=partita-code-marketing:4000" in args
    assert not [arg for arg in args if arg.startswith("--db")]
    (url,) = [env for env in container["env"] if env["name"] == "PARTITA_DATABASE_URL"]
    assert url == {
        "name": "PARTITA_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "partita-database", "key": "url"}},
    }
    assert of_kind(example, "Secret", "partita-database")["data"]["url"]
    assert container["resources"]["limits"]["memory"] == "4Gi"  # the overlay's patch


def test_code_servers_advertise_their_own_pinned_image(example: list[dict[str, Any]]) -> None:
    for location in ("analytics", "marketing"):
        container = of_kind(example, "Deployment", f"partita-code-{location}")["spec"]["template"]["spec"][
            "containers"
        ][0]
        (image,) = [env["value"] for env in container["env"] if env["name"] == "PARTITA_CODE_SERVER_IMAGE"]
        assert image == container["image"]
        assert f"--location-name={location}" in container["args"]


def test_the_launcher_settings_in_the_config_map_load(example: list[dict[str, Any]]) -> None:
    from launcher.k8s import K8sLauncherConfig

    config_map = of_kind(example, "ConfigMap", next(
        doc["metadata"]["name"] for doc in example if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("partita-launcher")
    ))  # fmt: skip
    config = K8sLauncherConfig.from_mapping(yaml.safe_load(config_map["data"]["k8s.yaml"]))
    analytics = config.settings_for("analytics", {})
    assert analytics.namespace == "partita" and analytics.resources["limits"] == {"memory": "8Gi"}
    assert config.settings_for("marketing", {}).active_deadline_seconds == 21_600
    base = K8sLauncherConfig.from_mapping(
        yaml.safe_load(
            yaml.safe_load((ROOT / "k8s/base/launcher-config.yaml").read_text())["data"]["k8s.yaml"]
        )
    )
    assert base.namespace is None  # the control plane's own namespace


@pytest.mark.parametrize(
    "dockerfile", sorted((ROOT / "docker").glob("*.Dockerfile")), ids=lambda path: path.name
)
def test_dockerfiles_copy_what_exists_and_run_as_non_root(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    sources = [
        source for line in text.splitlines() if line.startswith("COPY ") for source in line.split()[1:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    assert 'ENTRYPOINT ["partita"]' in text

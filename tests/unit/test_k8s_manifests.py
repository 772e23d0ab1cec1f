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
            # TCP: the kubelet's gRPC probe cannot speak TLS, which these ports serve.
            assert "tcpSocket" in container["readinessProbe"] and "tcpSocket" in container["livenessProbe"]
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
    pod = of_kind(example, "Deployment", "partita-control-plane")["spec"]["template"]["spec"]
    # From a file of the mounted Secret, not a variable: nothing in the environment holds the URL.
    assert mounted_secret(pod, container, env_value(container, "PARTITA_DATABASE_URL_FILE")) == (
        "partita-database",
        "url",
    )
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


def env_value(container: dict[str, Any], name: str) -> str:
    (value,) = [env["value"] for env in container.get("env", []) if env["name"] == name]
    return str(value)


def mounted_secret(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str]:
    """The (Secret, key) whose mounted file ``path`` is, in this container of this pod."""
    secrets = {
        volume["name"]: volume["secret"]["secretName"]
        for volume in pod.get("volumes", [])
        if "secret" in volume
    }
    for mount in container.get("volumeMounts", []):
        directory = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(directory) and mount["name"] in secrets:
            return secrets[mount["name"]], path.removeprefix(directory)
    raise AssertionError(f"{path} is in no mounted Secret of {container['name']}")


def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each Deployment's pod template, by Deployment name."""
    return {doc["metadata"]["name"]: doc["spec"]["template"] for doc in docs if doc["kind"] == "Deployment"}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert not selector.get("matchExpressions"), "only matchLabels are used (and checked) here"
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def run_pod_labels() -> dict[str, str]:
    """The labels of a real run Job's pod, as the launcher builds it (with a tag trying to pose as the
    control plane)."""
    import json

    from code_server.asset_key import AssetKey
    from launcher.base import CodeLocationTarget, LaunchRequest
    from launcher.k8s import K8S_CONFIG_TAG, K8sLauncherConfig
    from launcher.k8s.job_body import build_job

    tags = {K8S_CONFIG_TAG: json.dumps({"labels": {"app.kubernetes.io/component": "control-plane"}})}
    launch = LaunchRequest(
        run_id="r1", location=CodeLocationTarget("analytics", module_name="m"), asset_keys=(AssetKey("a"),),
        partition_range=None, control_plane_address="cp:3000", tags=tags,
    )  # fmt: skip
    settings = K8sLauncherConfig().settings_for("analytics", tags)
    labels: dict[str, str] = build_job(launch, settings, "image:1")["spec"]["template"]["metadata"]["labels"]
    return labels


def test_secrets_are_mounted_files_and_no_environment_carries_the_database_url(
    example: list[dict[str, Any]],
) -> None:
    for name, template in pods(example).items():
        pod = template["spec"]
        for container in pod["containers"]:
            for env in container.get("env", []):
                assert env["name"] != "PARTITA_DATABASE_URL", name
                assert "://" not in str(env.get("value", "")) or "@" not in str(env.get("value", "")), name
                assert "secretKeyRef" not in env.get("valueFrom", {}), f"{name}: {env['name']} from a Secret"
            assert not container.get("envFrom"), name
            for variable in ("PARTITA_TLS_CERT", "PARTITA_TLS_KEY", "PARTITA_CODE_SERVER_TOKEN_FILE"):
                secret, _key = mounted_secret(pod, container, env_value(container, variable))
                assert secret.startswith("partita-"), (name, variable)
        mounted = {volume["secret"]["secretName"] for volume in pod.get("volumes", []) if "secret" in volume}
        # The database Secret: the control plane's alone.
        assert ("partita-database" in mounted) == (name == "partita-control-plane"), name
    control_plane = pods(example)["partita-control-plane"]["spec"]
    (container,) = control_plane["containers"]
    for variable in ("PARTITA_TLS_CLIENT_CA", "PARTITA_TLS_CA"):
        assert mounted_secret(control_plane, container, env_value(container, variable)) == (
            "partita-control-plane-tls",
            "ca.crt",
        )
    assert control_plane["securityContext"]["fsGroup"] == 10001


def test_only_the_control_plane_may_read_the_database_secret(example: list[dict[str, Any]]) -> None:
    # No Role in the namespace grants secrets (the kubelet mounts the control plane's; the API never
    # hands it out), and nothing is bound to the run pods' or code servers' ServiceAccount.
    for role in (doc for doc in example if doc["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            assert "secrets" not in rule["resources"] and "*" not in rule["resources"], role["metadata"][
                "name"
            ]
    for binding in (doc for doc in example if doc["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert {subject["name"] for subject in binding["subjects"]} == {"partita-control-plane"}
    for name, template in pods(example).items():
        expected = "partita-control-plane" if name == "partita-control-plane" else "partita-run-worker"
        assert template["spec"]["serviceAccountName"] == expected, name
    config_map = next(
        doc for doc in example if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "partita-launcher"
    )
    assert "partita-database" not in config_map["data"]["k8s.yaml"]  # run Jobs never reference it


def test_network_policies_deny_by_default_and_let_only_the_right_pods_in(
    example: list[dict[str, Any]],
) -> None:
    policies = {doc["metadata"]["name"]: doc["spec"] for doc in example if doc["kind"] == "NetworkPolicy"}
    assert all(doc["metadata"]["namespace"] == "partita" for doc in example if doc["kind"] == "NetworkPolicy")
    deny = policies["partita-default-deny-ingress"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}

    templates = pods(example)
    labels = {name: template["metadata"]["labels"] for name, template in templates.items()}
    control_plane, run_pod = labels["partita-control-plane"], run_pod_labels()
    code_servers = [labels["partita-code-analytics"], labels["partita-code-marketing"]]
    assert run_pod["app.kubernetes.io/component"] == "run-worker"  # a tag cannot pose as the control plane

    to_code = policies["partita-code-servers-from-control-plane"]
    assert all(selects(to_code["podSelector"], pod) for pod in code_servers)
    assert not selects(to_code["podSelector"], control_plane) and not selects(to_code["podSelector"], run_pod)
    (rule,) = to_code["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 4000}]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}
    assert selects(source["podSelector"], control_plane)
    assert not selects(source["podSelector"], run_pod)
    assert not any(selects(source["podSelector"], pod) for pod in code_servers)

    to_control = policies["partita-control-plane-from-runs-and-clients"]
    assert selects(to_control["podSelector"], control_plane)
    assert not any(selects(to_control["podSelector"], pod) for pod in [run_pod, *code_servers])
    (rule,) = to_control["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3000}]
    runs, clients = rule["from"]
    assert set(runs) == {"podSelector"} and selects(runs["podSelector"], run_pod)
    assert not any(selects(runs["podSelector"], pod) for pod in code_servers)
    assert clients["namespaceSelector"] == {"matchLabels": {"partita/client-access": "true"}}
    assert clients["podSelector"] == {"matchLabels": {"partita/client": "true"}}
    # Every pod is selected by some policy: none is left open.
    for name, pod_labels in labels.items():
        assert any(selects(spec["podSelector"], pod_labels) for spec in policies.values()), name

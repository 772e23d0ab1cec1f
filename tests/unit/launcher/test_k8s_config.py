"""Launcher settings: defaults, then the location, then the run's tag, deep-merged; bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.k8s import K8S_CONFIG_TAG, K8sConfigError, K8sLauncherConfig, RunOverrideNotAllowed
from launcher.k8s.config import deep_merge

CONFIG = """
namespace: partita
defaults:
  service_account_name: partita-run-worker
  image_pull_secrets: [regcred]
  env: [{name: LOG_LEVEL, value: info}, {name: REGION, value: eu}]
  resources: {requests: {cpu: 500m, memory: 512Mi}, limits: {memory: 2Gi}}
  tolerations: [{key: batch, operator: Exists, effect: NoSchedule}]
  labels: {team: data}
locations:
  analytics:
    namespace: analytics-runs
    image: registry.example.com/analytics:1.4.2
    env: [{name: LOG_LEVEL, value: debug}]
    resources: {limits: {memory: 8Gi}}
"""


@pytest.fixture
def config(tmp_path: Path) -> K8sLauncherConfig:
    path = tmp_path / "k8s.yaml"
    path.write_text(CONFIG)
    return K8sLauncherConfig.from_file(path)


def test_a_location_is_deep_merged_over_the_defaults(config: K8sLauncherConfig) -> None:
    settings = config.settings_for("analytics", {})
    assert settings.namespace == "analytics-runs"
    assert settings.image == "registry.example.com/analytics:1.4.2"
    assert settings.service_account_name == "partita-run-worker"
    assert settings.resources == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "8Gi"}}
    # Named list items merge by name; the location's value wins, the order stays.
    assert list(settings.env) == [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "REGION", "value": "eu"}]
    assert settings.ttl_seconds_after_finished == 86_400


def test_an_unconfigured_location_gets_the_defaults(config: K8sLauncherConfig) -> None:
    settings = config.settings_for("other", {})
    assert settings.namespace == "partita"
    assert settings.image is None
    assert settings.image_pull_secrets == ("regcred",)
    assert settings.labels == {"team": "data"}


def test_a_run_tag_overrides_for_that_run_only(config: K8sLauncherConfig) -> None:
    heavy = json.dumps(
        {
            "resources": {"limits": {"memory": "32Gi"}},
            "tolerations": [{"key": "highmem", "operator": "Exists"}],
            "node_selector": {"pool": "highmem"},
        }
    )
    settings = config.settings_for("analytics", {K8S_CONFIG_TAG: heavy})
    assert settings.resources["limits"] == {"memory": "32Gi"}
    assert settings.resources["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert [t["key"] for t in settings.tolerations] == ["batch", "highmem"]
    assert settings.node_selector == {"pool": "highmem"}
    assert config.settings_for("analytics", {}).resources["limits"] == {"memory": "8Gi"}


def test_an_env_var_from_a_secret_replaces_a_plain_one() -> None:
    merged = deep_merge(
        {"env": [{"name": "TOKEN", "value": "x"}]},
        {"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
    )
    assert merged["env"] == [
        {"name": "TOKEN", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    ]
    replaced = deep_merge({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A", "value": "2"}]})
    assert replaced["env"] == [{"name": "A", "value": "2"}]


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"resource": {}}', "unknown setting(s) resource"),
        ('{"resources": "8Gi"}', "resources must be a mapping"),
        ('{"ttl_seconds_after_finished": -1}', "whole number of seconds"),
        ('{"image_pull_policy": "Sometimes"}', "image_pull_policy must be one of"),
        ('{"env": [{"value": "1"}]}', "every env item needs a name"),
        ('{"labels": {"tier": 3}}', "labels.tier must be a string"),
        ("[1, 2]", "expected a mapping of settings"),
    ],
)
def test_a_bad_run_tag_is_refused_with_what_is_wrong(
    config: K8sLauncherConfig, tag: str, message: str
) -> None:
    with pytest.raises(K8sConfigError, match=K8S_CONFIG_TAG) as error:
        config.settings_for("analytics", {K8S_CONFIG_TAG: tag})
    assert message in str(error.value)


def test_a_bad_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yaml"
    path.write_text("namespace: partita\nlocations:\n  etl:\n    memory: 8Gi\n")
    with pytest.raises(K8sConfigError, match=r"k8s.yaml: locations.etl: unknown setting\(s\) memory"):
        K8sLauncherConfig.from_file(path)
    path.write_text("namespaces: x\n")
    with pytest.raises(K8sConfigError, match="unknown key"):
        K8sLauncherConfig.from_file(path)
    with pytest.raises(K8sConfigError, match=r"missing\.yaml"):
        K8sLauncherConfig.from_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "key",
    [
        "service_account_name",
        "image",
        "namespace",
        "env",
        "env_from",
        "image_pull_secrets",
        "image_pull_policy",
    ],
)
def test_a_run_tag_may_not_set_a_key_the_operator_did_not_allow(config: K8sLauncherConfig, key: str) -> None:
    value: object = [] if key in ("env", "env_from", "image_pull_secrets") else "x"
    if key == "image_pull_policy":
        value = "Always"
    with pytest.raises(RunOverrideNotAllowed) as error:
        config.settings_for("analytics", {K8S_CONFIG_TAG: json.dumps({key: value})})
    message = str(error.value)
    assert f"key {key!r} is not allowed for location 'analytics'" in message
    assert (
        "allowed: active_deadline_seconds, annotations, labels, node_selector, resources, tolerations"
        in message
    )
    assert "allowed_run_overrides" in message  # how an operator allows it
    with pytest.raises(RunOverrideNotAllowed):
        config.check_run_override("analytics", {K8S_CONFIG_TAG: json.dumps({key: value})})


def test_every_refused_key_is_named(config: K8sLauncherConfig) -> None:
    tag = json.dumps({"env_from": [], "service_account_name": "admin", "resources": {}})
    with pytest.raises(RunOverrideNotAllowed, match=r"key 'env_from' .*\(nor 'service_account_name'\)"):
        config.check_run_override("analytics", {K8S_CONFIG_TAG: tag})


def test_the_operator_allows_keys_globally_or_per_location(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yaml"
    path.write_text(
        CONFIG.replace("defaults:", "allowed_run_overrides: [resources, env]\ndefaults:", 1).replace(
            "    namespace: analytics-runs\n",
            "    namespace: analytics-runs\n    allowed_run_overrides: [service_account_name]\n",
        )
    )
    config = K8sLauncherConfig.from_file(path)
    env = json.dumps({"env": [{"name": "EXTRA", "value": "1"}]})
    # Globally: env is now allowed, node_selector (a default) no longer is: the list replaces the default.
    assert {"name": "EXTRA", "value": "1"} in config.settings_for("other", {K8S_CONFIG_TAG: env}).env
    with pytest.raises(RunOverrideNotAllowed, match="'node_selector' is not allowed for location 'other'"):
        config.check_run_override("other", {K8S_CONFIG_TAG: json.dumps({"node_selector": {}})})
    # Per location: its own list replaces the global one, and the message says where to add a key.
    sa = json.dumps({"service_account_name": "analytics-runner"})
    assert config.settings_for("analytics", {K8S_CONFIG_TAG: sa}).service_account_name == "analytics-runner"
    with pytest.raises(RunOverrideNotAllowed, match=r"add it to locations\.analytics\.allowed_run_overrides"):
        config.check_run_override("analytics", {K8S_CONFIG_TAG: env})
    # The location's own settings are not affected by its allow-list key.
    assert config.settings_for("analytics", {}).namespace == "analytics-runs"


def test_an_allow_list_naming_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yaml"
    path.write_text("allowed_run_overrides: [resources, memory]\n")
    with pytest.raises(K8sConfigError, match=r"allowed_run_overrides names unknown setting\(s\) memory"):
        K8sLauncherConfig.from_file(path)
    path.write_text("locations:\n  etl:\n    allowed_run_overrides: resources\n")
    with pytest.raises(K8sConfigError, match=r"locations.etl: allowed_run_overrides must be a list"):
        K8sLauncherConfig.from_file(path)

"""The Kubernetes launcher: one ``batch/v1`` Job per run (the only package that imports ``kubernetes``)."""

from launcher.k8s.config import JobSettings, K8sLauncherConfig
from launcher.k8s.launcher import KubernetesRunLauncher
from launcher.k8s.names import job_name, label_value
from launcher.k8s.run_overrides import K8S_CONFIG_TAG, K8sConfigError, RunOverrideNotAllowed

__all__ = [
    "K8S_CONFIG_TAG",
    "JobSettings",
    "K8sConfigError",
    "K8sLauncherConfig",
    "KubernetesRunLauncher",
    "RunOverrideNotAllowed",
    "job_name",
    "label_value",
]

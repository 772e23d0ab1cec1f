"""The Kubernetes launcher: one ``batch/v1`` Job per run (the only package that imports ``kubernetes``)."""

from launcher.k8s.config import K8S_CONFIG_TAG, JobSettings, K8sConfigError, K8sLauncherConfig
from launcher.k8s.launcher import KubernetesRunLauncher
from launcher.k8s.names import job_name, label_value

__all__ = [
    "K8S_CONFIG_TAG",
    "JobSettings",
    "K8sConfigError",
    "K8sLauncherConfig",
    "KubernetesRunLauncher",
    "job_name",
    "label_value",
]

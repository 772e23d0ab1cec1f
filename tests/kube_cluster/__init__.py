"""A Kubernetes API server on loopback for tests: kmock's emulator, extended, and a simulated node."""

from tests.kube_cluster.server import KUBECTL, KubeApiServer

__all__ = ["KUBECTL", "KubeApiServer"]

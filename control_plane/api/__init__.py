"""The control plane's public gRPC API (``partita.controlplane.v1.ControlPlane``) over ``ControlPlaneService``."""

from control_plane.api.servicer import ControlPlaneServicer

__all__ = ["ControlPlaneServicer"]

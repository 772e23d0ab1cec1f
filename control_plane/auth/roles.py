"""The role each ControlPlane RPC needs, and the run tags only an admin may set.

Every method of the service has a rule here; a method without one needs ADMIN (refused rather than
open) and the table-driven test over the service descriptor fails until it gets one.
"""

from __future__ import annotations

from collections.abc import Mapping

from control_plane.auth.identity import Role

CONTROL_PLANE_SERVICE = "partita.controlplane.v1.ControlPlane"

_V, _O, _A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

#: ControlPlane method name -> the least role that may call it.
METHOD_ROLES: Mapping[str, Role] = {
    # Reads, logs, watches and the caller's own identity.
    "GetBackfill": _V,
    "ListBackfills": _V,
    "WatchBackfill": _V,
    "ListRuns": _V,
    "GetRun": _V,
    "GetRunLogs": _V,
    "GetAssetPartitionStatus": _V,
    "ListCodeLocations": _V,
    "ListSensors": _V,
    "ListSensorTicks": _V,
    "ListSchedules": _V,
    "ListScheduleTicks": _V,
    "WhoAmI": _V,
    # What changes what runs.
    "LaunchBackfill": _O,
    "CancelBackfill": _O,
    "RetryBackfill": _O,
    "PauseBackfill": _O,
    "ResumeBackfill": _O,
    "UpdateBackfillLimits": _O,
    "TerminateRun": _O,
    "StartSensor": _O,
    "StopSensor": _O,
    "StartSchedule": _O,
    "StopSchedule": _O,
    # Previews run user code on the code server: as much as a launch, though they write nothing.
    "PreviewSensor": _O,
    "PreviewSchedule": _O,
    # Who may call at all.
    "CreateApiToken": _A,
    "ListApiTokens": _A,
    "RevokeApiToken": _A,
    # Who did what: the audit log.
    "ListAuditEvents": _A,
}

#: Run tags that change how a run is launched (service account, env, image...): admin only.
#: Kept equal to ``launcher.k8s.K8S_CONFIG_TAG`` by a test; the control plane does not import the
#: Kubernetes launcher.
LAUNCH_SETTING_TAGS = frozenset({"partita/k8s-config"})
#: Any future launcher's settings tag is admin-only too, unless it is known to be harmless.
LAUNCH_SETTING_TAG_PREFIXES = ("partita/k8s",)


def required_role(method: str) -> Role:
    """The least role for ``method`` (a bare method name); ADMIN for one without a rule."""
    return METHOD_ROLES.get(method, Role.ADMIN)


def launch_setting_tags(tags: Mapping[str, str]) -> list[str]:
    """The tags among ``tags`` that only an admin may set, sorted."""
    return sorted(
        key for key in tags if key in LAUNCH_SETTING_TAGS or key.startswith(LAUNCH_SETTING_TAG_PREFIXES)
    )

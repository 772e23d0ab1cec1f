"""Whether an identity may make one ControlPlane call: its role, run-setting tags, code locations.

Checked on the request before the handler runs, so a refused call reads and writes nothing:

- the role the method needs (``roles.METHOD_ROLES``);
- run tags that change how a run is launched (``partita/k8s-config``): admin only;
- for a token scoped to code locations: the location the request names (``location_name``), or the
  location of the backfill (``backfill_id``) or run (``run_id``) it names, looked up with
  ``owner_location``; a scoped token must name a location where the field is optional (listing
  every location's backfills, runs, sensors or schedules is not open to it). ``ListCodeLocations``
  and ``WhoAmI`` are open to any token; a scoped admin creates tokens only within its locations.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from control_plane.auth.identity import Identity, Role
from control_plane.auth.roles import launch_setting_tags, required_role

#: ("backfill" | "run", id) -> its code location; None when there is no such thing.
OwnerLocation = Callable[[str, str], str | None]

_LOCATION_FREE = frozenset(
    {"WhoAmI", "ListCodeLocations", "ListApiTokens", "RevokeApiToken", "CreateApiToken"}
)
_RUN_TAG_METHODS = frozenset({"LaunchBackfill"})


class Refused(Exception):
    """The call is refused with ``code`` and this message (the message names what is needed)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_call(
    method: str, request: Message, identity: Identity, owner_location: OwnerLocation | None
) -> None:
    """Raise Refused unless ``identity`` may make this call."""
    needed = required_role(method)
    if identity.role < needed:
        raise Refused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{method} needs the {needed.label} role; {_who(identity)} has the {identity.role.label} "
            f"role. Ask an admin for a token with `--role {needed.label}`.",
        )
    if method in _RUN_TAG_METHODS and identity.role < Role.ADMIN:
        settings = launch_setting_tags(getattr(request, "tags", {}))
        if settings:
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"The run tag {settings[0]} changes how runs are launched and needs the admin role; "
                f"{_who(identity)} has the {identity.role.label} role. Launch without it, or ask an admin.",
            )
    if identity.locations is not None:
        _check_scope(method, request, identity, owner_location)


def _check_scope(
    method: str, request: Message, identity: Identity, owner_location: OwnerLocation | None
) -> None:
    if method == "CreateApiToken":
        wanted = set(getattr(request, "locations", ()))
        if not wanted or not wanted <= identity.locations:  # type: ignore[operator]
            raise _out_of_scope(identity, "a token beyond its own code locations")
        return
    if method in _LOCATION_FREE:
        return
    for field, kind in (("backfill_id", "backfill"), ("run_id", "run")):
        target = getattr(request, field, "")
        if target:
            location = owner_location(kind, target) if owner_location is not None else None
            if location is not None and not identity.may_act_on(location):
                raise _out_of_scope(identity, f"{kind} {target[:100]!r} of code location {location!r}")
            return  # an unknown id: the handler answers NOT_FOUND
    location = getattr(request, "location_name", "")
    if not location:
        raise _out_of_scope(identity, f"{method} without a code location; name one of them")
    if not identity.may_act_on(location):
        raise _out_of_scope(identity, f"code location {location[:100]!r}")


def _out_of_scope(identity: Identity, what: str) -> Refused:
    allowed = ", ".join(sorted(identity.locations or ()))
    return Refused(
        grpc.StatusCode.PERMISSION_DENIED,
        f"{_who(identity)} may act only on code locations {allowed}, not on {what}.",
    )


def _who(identity: Identity) -> str:
    return f"{identity.kind} {identity.name!r}"

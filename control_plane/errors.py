"""Errors of the control plane.

Hierarchy::

    ControlPlaneError                 (root; carries nothing but a message that says what to do)
    ├── InvalidBackfillRequest        the request names unknown assets, keys outside a definition,
    │                                 or roots with different partitions  -> INVALID_ARGUMENT
    ├── BackfillNotFound / RunNotFound                                    -> NOT_FOUND
    ├── InvalidStateTransition        e.g. resume a backfill that is not paused -> FAILED_PRECONDITION
    ├── UnknownLocation               no code location by that name       -> NOT_FOUND
    ├── LocationUnavailable           a code location cannot be reached   -> UNAVAILABLE
    ├── RunSettingsRefused            a run tag sets a launch setting the operator does not allow
    │                                                                      -> PERMISSION_DENIED
    └── TooManyStreams                the server's open-stream limit is reached -> RESOURCE_EXHAUSTED
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Root of the control plane's own errors."""


class InvalidBackfillRequest(ControlPlaneError):
    """The backfill request cannot be honoured as given; nothing was written."""


class BackfillNotFound(ControlPlaneError):
    pass


class RunNotFound(ControlPlaneError):
    pass


class InvalidStateTransition(ControlPlaneError):
    pass


class LocationUnavailable(ControlPlaneError):
    """A code location's server cannot be reached or has no loaded definitions."""


class UnknownLocation(ControlPlaneError):
    """No code location is configured under that name."""


class TooManyStreams(ControlPlaneError):
    """The control plane holds as many open streams as it is configured to; unary calls still work."""


class RunSettingsRefused(ControlPlaneError):
    """A run tag asks for a launch setting the launcher configuration does not allow; nothing was written."""


#: Longest echo of a caller's value (an id, a name) in an error message.
_SHOWN_LENGTH = 80


def shown(value: str) -> str:
    """``value`` as an error message echoes it: quoted, and cut short (saying so), so that hostile
    input cannot crowd out the message or push the status past what gRPC carries."""
    if len(value) <= _SHOWN_LENGTH:
        return repr(value)
    return f"{value[:_SHOWN_LENGTH]!r}… ({len(value)} characters)"


def shortened(text: str, limit: int = 200) -> str:
    """``text``, cut to about ``limit`` characters (saying how long it was): errors never echo
    unbounded input back to the caller."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"

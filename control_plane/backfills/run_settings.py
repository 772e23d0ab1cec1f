"""A backfill's run tags, checked against the launcher before anything is stored.

Its runs carry the backfill's tags to the launcher, which would refuse a bad ``partita/k8s-config``
only when it launches each run: every run would fail, after the backfill had been accepted. Asking the
launcher at LaunchBackfill time turns that into one clear refusal to the caller, with nothing written.
"""

from __future__ import annotations

from collections.abc import Mapping

from control_plane.errors import InvalidBackfillRequest, RunSettingsRefused
from launcher.base import InvalidRunSettings, RunLauncher, RunSettingsNotAllowed


class RunSettingsCheck:
    """``launcher.check_run_settings`` with its refusals as the control plane's errors."""

    def __init__(self, launcher: RunLauncher) -> None:
        self._launcher = launcher

    def __call__(self, location: str, tags: Mapping[str, str]) -> None:
        try:
            self._launcher.check_run_settings(location, tags)
        except RunSettingsNotAllowed as error:
            raise RunSettingsRefused(str(error)) from error
        except InvalidRunSettings as error:
            raise InvalidBackfillRequest(str(error)) from error

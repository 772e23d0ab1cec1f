"""Sensors and schedules in the control plane: their state, ticks, and the daemon step that runs them.

``AutomationDaemon.tick()`` is the daemon step; ``AutomationService`` answers the API; ``timing``
says when each is due; ``ticks`` runs one tick; ``submission`` turns requests into backfills and runs.
"""

from control_plane.automation.daemon import AutomationDaemon
from control_plane.automation.service import AutomationService, ScheduleView, SensorView

__all__ = ["AutomationDaemon", "AutomationService", "ScheduleView", "SensorView"]

"""Suite-wide settings.

Local run workers see only the variables an operator names (``launcher.worker_env``). The fixture
locations read their settings from ``PARTITA_TEST_*`` (and the examples from ``PARTITA_EXAMPLE_DATA``),
so the suite names those for every control plane it starts, in-process or as a command, the way an
operator would: with ``PARTITA_WORKER_ENV``.
"""

from __future__ import annotations

import os

from launcher.worker_env import WORKER_ENV_VARIABLE

os.environ.setdefault(
    WORKER_ENV_VARIABLE, "PARTITA_TEST_*,PARTITA_EXAMPLE_DATA,PARTITA_CHAOS_*,PARTITA_GENERATED_*"
)

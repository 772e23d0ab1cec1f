"""The environment a local run worker starts with: what a run needs, and what the operator names.

A worker runs user code. Handing it the control plane's whole environment would hand that code the
database URL (``PARTITA_DATABASE_URL``, with its password) and whatever other secrets the operator
gave the control plane. So a worker gets only:

- what any Python process needs to run here (``BASE_WORKER_ENV``: PATH, HOME, locale, TZ, TMPDIR,
  PYTHONPATH, VIRTUAL_ENV, ...);
- the variables the operator names: ``--worker-env NAME`` (repeatable) or ``PARTITA_WORKER_ENV``
  (comma-separated), where a name ending in ``*`` is a prefix (``PARTITA_TEST_*``);
- the run settings the launcher sets itself (passed to ``worker_environment`` as ``settings``).

Variables that carry the control plane's own secrets are never passed, even when a pattern matches
them (``NEVER_PASSED``): an allow-list of ``PARTITA_*`` does not leak the database URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

#: Variables the operator names for workers, comma-separated (``PARTITA_TEST_*,WAREHOUSE_URL``).
WORKER_ENV_VARIABLE = "PARTITA_WORKER_ENV"
#: What a worker needs to start Python and find its code, whatever the operator configured.
BASE_WORKER_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    # The CA a worker trusts for the control plane's TLS certificate: a path, not a secret.
    "PARTITA_TLS_CA",
)
#: The control plane's own secrets: never a worker's, whatever a pattern says.
NEVER_PASSED = frozenset(
    {
        "PARTITA_DATABASE_URL",
        "PARTITA_DATABASE_URL_FILE",
        "PARTITA_TLS_KEY",
        "PARTITA_SERVER_TLS_KEY",
        "PARTITA_TOKEN_FILE",
        "PARTITA_CODE_SERVER_TOKEN",
        "PARTITA_CODE_SERVER_TOKEN_FILE",
        "PARTITA_TOKEN",
        "PARTITA_RUN_SECRET",
        "PARTITA_RUN_SECRET_FILE",
    }
)


def parse_worker_env(text: str | None) -> tuple[str, ...]:
    """The names in a ``PARTITA_WORKER_ENV`` value (comma- or whitespace-separated)."""
    return tuple(name for name in (text or "").replace(",", " ").split() if name)


def is_allowed(name: str, allowed: Iterable[str]) -> bool:
    """Whether ``name`` is in ``allowed`` (exact names, or prefixes written ``PREFIX*``)."""
    if name in NEVER_PASSED:
        return False
    return any(
        name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])) for pattern in allowed
    )


def worker_environment(
    allowed: Iterable[str] = (),
    *,
    settings: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker: the base variables and ``allowed`` taken from ``source`` (the
    control plane's environment, by default), with the launcher's own ``settings`` over them.

    ``PARTITA_WORKER_ENV`` in ``source`` adds to ``allowed``, so an operator (or a test suite) can
    name variables for every control plane it starts without a flag on each.
    """
    source = os.environ if source is None else source
    patterns = (*BASE_WORKER_ENV, *allowed, *parse_worker_env(source.get(WORKER_ENV_VARIABLE)))
    environment = {name: value for name, value in source.items() if is_allowed(name, patterns)}
    environment.update(settings or {})
    return environment

"""Load a code location's definitions from a user module or file."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from code_server.assets import AssetsDefinition
from code_server.definitions import Definitions
from code_server.errors import DefinitionError, UserCodeLoadError
from code_server.schedules import ScheduleDefinition
from code_server.sensors import SensorDefinition

_T = TypeVar("_T")


def load_definitions(
    *,
    module_name: str | None = None,
    python_file: str | Path | None = None,
    working_directory: str | Path | None = None,
    fresh: bool = False,
) -> Definitions:
    """Import the user's code and return its definitions.

    A module-level ``Definitions`` object wins; without one (as in the guide's examples) every
    module-level asset, schedule and sensor is collected. ``fresh`` re-imports the module from
    disk, for a reload. Import errors raise :class:`UserCodeLoadError` chained to the user's error.
    """
    if (module_name is None) == (python_file is None):
        raise UserCodeLoadError("Pass exactly one of a module name (-m) or a python file (-f).")
    if working_directory is not None:
        directory = str(Path(working_directory).resolve())
        if directory not in sys.path:
            sys.path.insert(0, directory)
    target = module_name if module_name is not None else str(python_file)
    try:
        module = _import_module(module_name, fresh) if module_name else _import_file(Path(str(python_file)))
        return definitions_from_module(module)
    except UserCodeLoadError:
        raise
    except Exception as error:
        raise UserCodeLoadError(f"Could not load code location from {target!r}: {error}") from error


def definitions_from_module(module: ModuleType) -> Definitions:
    """The module's ``Definitions`` object, or one gathered from its module-level definitions."""
    values = list(vars(module).values())
    explicit = [value for value in values if isinstance(value, Definitions)]
    if len(explicit) > 1:
        raise DefinitionError(
            f"Module {module.__name__!r} has {len(explicit)} Definitions objects at module scope; keep one."
        )
    if explicit:
        return explicit[0]
    return Definitions(
        assets=_unique(value for value in values if isinstance(value, AssetsDefinition)),
        schedules=_unique(value for value in values if isinstance(value, ScheduleDefinition)),
        sensors=_unique(value for value in values if isinstance(value, SensorDefinition)),
    )


def _import_module(module_name: str, fresh: bool) -> ModuleType:
    if fresh:
        stale = [name for name in sys.modules if name == module_name or name.startswith(module_name + ".")]
        for name in stale:
            del sys.modules[name]
        importlib.invalidate_caches()
    return importlib.import_module(module_name)


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise UserCodeLoadError(f"Python file {str(path)!r} does not exist.")
    module_name = f"partita_user_code.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserCodeLoadError(f"Cannot import {str(path)!r} as Python code.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _unique(values: Iterable[_T]) -> list[_T]:
    """Drop repeats of the same object (a module may bind one asset to two names)."""
    seen: dict[int, _T] = {}
    for value in values:
        seen.setdefault(id(value), value)
    return list(seen.values())

"""Asset keys: the names of assets, with optional prefixes (``AssetKey(["warehouse", "events"])``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import total_ordering

from code_server.errors import DefinitionError

_VALID_PART = re.compile(r"[A-Za-z0-9_\-.]+")
_SEPARATOR = "/"


@total_ordering
class AssetKey:
    """An asset's identity: a path of name parts. ``AssetKey("a")`` == ``AssetKey(["a"])``."""

    __slots__ = ("_hash", "path")

    path: tuple[str, ...]
    _hash: int

    def __init__(self, path: str | Sequence[str]) -> None:
        parts = (path,) if isinstance(path, str) else tuple(path)
        if not parts:
            raise DefinitionError("AssetKey needs at least one name part.")
        for part in parts:
            if not isinstance(part, str) or not _VALID_PART.fullmatch(part):
                raise DefinitionError(
                    f"Invalid asset key part {part!r} in {list(parts)}: use letters, digits, '_', '-' and '.'."
                )
        object.__setattr__(self, "path", parts)
        object.__setattr__(self, "_hash", hash(parts))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AssetKey is immutable")

    @classmethod
    def from_user_string(cls, text: str) -> AssetKey:
        """Parse the ``a/b`` form used on the command line and in logs."""
        return cls(text.split(_SEPARATOR))

    @classmethod
    def from_coercible(cls, value: CoercibleToAssetKey) -> AssetKey:
        if isinstance(value, AssetKey):
            return value
        if isinstance(value, str):
            return cls.from_user_string(value)
        return cls(value)

    def to_user_string(self) -> str:
        return _SEPARATOR.join(self.path)

    def with_prefix(self, prefix: str | Sequence[str]) -> AssetKey:
        prefix_parts = (prefix,) if isinstance(prefix, str) else tuple(prefix)
        return AssetKey(prefix_parts + self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetKey) and self.path == other.path

    def __lt__(self, other: AssetKey) -> bool:
        return self.path < other.path

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        if len(self.path) == 1:
            return f"AssetKey({self.path[0]!r})"
        return f"AssetKey({list(self.path)!r})"

    def __str__(self) -> str:
        return self.to_user_string()


CoercibleToAssetKey = AssetKey | str | Sequence[str]

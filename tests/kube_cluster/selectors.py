"""Label and field selectors as the API server evaluates them (the subset kubectl and clients send)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Matcher = Callable[[Mapping[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*(!?)([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses: ``a in (x,y),b=c`` is two terms."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term.strip() for term in terms if term.strip()]


def label_matcher(selector: str | None) -> Matcher:
    """``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x)``, comma-joined."""
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for term in _split_terms(selector or ""):
        if match := _SET_TERM.match(term):
            _, key, operator, values_text = match.groups()
            values = {value.strip() for value in values_text.split(",") if value.strip()}
            checks.append(_in_set(key, values, wanted=operator == "in"))
        elif "!=" in term:
            key, _, value = term.partition("!=")
            checks.append(_equals(key.strip(), value.strip(), wanted=False))
        elif "=" in term:
            key, _, value = term.replace("==", "=").partition("=")
            checks.append(_equals(key.strip(), value.strip(), wanted=True))
        else:
            checks.append(_present(term.lstrip("!").strip(), wanted=not term.startswith("!")))

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return matches


def _in_set(key: str, values: set[str], *, wanted: bool) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: (labels.get(key) in values) == wanted


def _equals(key: str, value: str, *, wanted: bool) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: (labels.get(key) == value) == wanted


def _present(key: str, *, wanted: bool) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: (key in labels) == wanted


def field_matcher(selector: str | None) -> Matcher:
    """``path=value`` / ``path!=value`` terms on dotted paths (``metadata.name``, ``involvedObject.uid``)."""
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for term in _split_terms(selector or ""):
        negate = "!=" in term
        path, _, value = term.partition("!=" if negate else "=")
        value = value.lstrip("=").strip()
        keys = path.strip().split(".")
        checks.append(_field_equals(keys, value, wanted=not negate))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(check(obj) for check in checks)

    return matches


def _field_equals(keys: list[str], value: str, *, wanted: bool) -> Callable[[Mapping[str, Any]], bool]:
    return lambda obj: (_field(obj, keys) == value) == wanted


def _field(obj: Mapping[str, Any], keys: list[str]) -> str:
    value: Any = obj
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)

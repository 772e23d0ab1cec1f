"""Kubernetes names and label values derived from run ids and user names.

Job names must be DNS-1123 labels (lower-case alphanumerics and '-', at most 63 characters) and label
values at most 63 characters of ``[A-Za-z0-9._-]`` starting and ending alphanumeric. Location and asset
names are free text, so every value is sanitized, and a value too long to fit keeps a hash of the
original so two long names never collapse into one.
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 63
JOB_NAME_PREFIX = "partita-run-"
_NOT_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_LENGTH = 8


def job_name(run_id: str) -> str:
    """The Job name of a run: deterministic, so a relaunch after a crash finds the same Job."""
    body = _NOT_DNS_LABEL.sub("-", run_id.lower()).strip("-")
    name = f"{JOB_NAME_PREFIX}{body}".rstrip("-")
    if len(name) <= MAX_LENGTH and body == run_id:
        return name
    # Changed or too long: keep a hash of the original id so distinct ids stay distinct.
    return _fit(name, run_id, MAX_LENGTH).rstrip("-")


def label_value(value: str) -> str:
    """``value`` as a valid label value (empty stays empty: Kubernetes allows it)."""
    cleaned = _NOT_LABEL_VALUE.sub("-", value)
    cleaned = _strip_non_alphanumeric(cleaned)
    if cleaned == value and len(value) <= MAX_LENGTH:
        return value
    return _strip_non_alphanumeric(_fit(cleaned, value, MAX_LENGTH)) if cleaned else _digest(value)


def _fit(text: str, original: str, limit: int) -> str:
    digest = _digest(original)
    head = _strip_non_alphanumeric(text[: limit - _HASH_LENGTH - 1])
    return f"{head}-{digest}" if head else digest


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:_HASH_LENGTH]


def _strip_non_alphanumeric(text: str) -> str:
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]

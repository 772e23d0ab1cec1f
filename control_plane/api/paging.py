"""Page sizes and opaque page tokens of the list RPCs.

A list page's token is the last item's time and id (the service pages with a ``PageCursor``: many
items share a time, like the runs of one launch); a range page's token is an offset. Both are base64
so that clients treat them as opaque; the payload starts with a format version, and decoding is strict
(URL-safe base64 alphabet, bounded length, ASCII digits only) so that a forged token is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from control_plane.api.status import BadRequest
from control_plane.records import PageCursor

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DEFAULT_RANGE_PAGE_SIZE = 1000
MAX_RANGE_PAGE_SIZE = 10_000
#: Tokens are far shorter (an ISO time and an id); a longer one cannot be ours.
MAX_PAGE_TOKEN_LENGTH = 1024

#: The payload's format version, first in every token, so that a later format can tell old tokens apart.
_VERSION = "p1"
_SEPARATOR = "|"
_AFTER = "after"
_OFFSET = "offset"
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_OFFSET_DIGITS = re.compile(r"[0-9]{1,12}")
_ISO_TIME = re.compile(r"[0-9T:.+-]{10,40}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def page_size(requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    if requested < 0:
        raise BadRequest(f"page_size must be 0 (the default, {default}) or more, not {requested}.")
    return min(requested or default, maximum)


def paged(
    items: Sequence[T], size: int, cursor: Callable[[T], tuple[datetime, str]]
) -> tuple[Sequence[T], str]:
    """The page of ``items`` (fetched as ``size + 1``, newest first) and the token of the next one.

    ``cursor`` gives an item's time and id, what the next page resumes after; no token on the last page.
    """
    page = items[:size]
    return page, encode_page_token(*cursor(page[-1])) if len(items) > size else ""


def encode_page_token(at: datetime, item_id: str) -> str:
    """An opaque token for "the items after this one" (the last item of a page), newest first."""
    return _encode(f"{_AFTER}{_SEPARATOR}{at.isoformat()}{_SEPARATOR}{item_id}")


def decode_page_token(token: str) -> PageCursor | None:
    if not token:
        return None
    kind, _, rest = _decode(token).partition(_SEPARATOR)
    text, _, item_id = rest.partition(_SEPARATOR)
    if kind != _AFTER or not _ISO_TIME.fullmatch(text) or not item_id or _CONTROL.search(item_id):
        raise _not_ours(token)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as error:
        raise _not_ours(token) from error
    if at.tzinfo is None:
        raise _not_ours(token)
    return PageCursor(at, item_id)


def encode_offset_token(offset: int) -> str:
    return _encode(f"{_OFFSET}{_SEPARATOR}{offset}")


def decode_offset_token(token: str) -> int:
    if not token:
        return 0
    kind, _, value = _decode(token).partition(_SEPARATOR)
    # ASCII digits only and bounded: str.isdigit() accepts "²", and int() of 5,000 digits is refused.
    if kind != _OFFSET or not _OFFSET_DIGITS.fullmatch(value):
        raise _not_ours(token)
    return int(value)


def _encode(payload: str) -> str:
    return base64.urlsafe_b64encode(f"{_VERSION}{_SEPARATOR}{payload}".encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    """The payload of a token this server issued, after its version; anything else is INVALID_ARGUMENT."""
    if len(token) > MAX_PAGE_TOKEN_LENGTH or not _TOKEN_ALPHABET.fullmatch(token):
        raise _not_ours(token)
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise _not_ours(token) from error
    version, _, payload = text.partition(_SEPARATOR)
    if version != _VERSION:
        raise _not_ours(token)
    return payload


def _not_ours(token: str) -> BadRequest:
    shown = token if len(token) <= 60 else token[:60] + "..."
    return BadRequest(
        f"page_token {shown!r} is not one this server issued; pass next_page_token from the previous page."
    )

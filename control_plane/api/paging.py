"""Page sizes and opaque page tokens of the list RPCs.

A list page's token is the last item's time and id (the service pages with a ``PageCursor``: many
items share a time, like the runs of one launch); a range page's token is an offset. Both are base64
so that clients treat them as opaque.
"""

from __future__ import annotations

import base64
import binascii
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
    return _encode(f"{at.isoformat()} {item_id}")


def decode_page_token(token: str) -> PageCursor | None:
    if not token:
        return None
    text, _, item_id = _decode(token).partition(" ")
    try:
        at = datetime.fromisoformat(text)
    except ValueError as error:
        raise _not_ours(token) from error
    if at.tzinfo is None or not item_id:
        raise _not_ours(token)
    return PageCursor(at, item_id)


def encode_offset_token(offset: int) -> str:
    return _encode(f"offset:{offset}")


def decode_offset_token(token: str) -> int:
    if not token:
        return 0
    kind, _, value = _decode(token).partition(":")
    if kind != "offset" or not value.isdigit():
        raise _not_ours(token)
    return int(value)


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise _not_ours(token) from error


def _not_ours(token: str) -> BadRequest:
    return BadRequest(
        f"page_token {token!r} is not one this server issued; pass next_page_token from the previous page."
    )

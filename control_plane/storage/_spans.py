"""Span arithmetic for backfill progress, free of I/O: build spans, and split them under a write.

A span is (first, last, status, run, change_seq) over an asset's positions. A write gives *edits*,
disjoint position intervals each with the status and run to set; spans inside an edit take the new
values, the parts outside keep theirs, and touching pieces with equal values merge again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: ``Edit.run_id`` value that keeps each span's run.
KEEP_RUN = "\x00keep"


@dataclass(frozen=True, slots=True)
class Span:
    first: int
    last: int
    status: str
    run_id: str | None
    change_seq: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class Edit:
    first: int
    last: int
    status: str
    run_id: str | None = KEEP_RUN


@dataclass
class Rewrite:
    #: First positions of the spans that are replaced.
    removed: list[int]
    added: list[Span]
    #: Positions whose status or run changed.
    changed: int


def spans_of(rows: Iterable[tuple[int, str, str | None]], change_seq: int = 0) -> list[Span]:
    """Spans of (position, status, run) rows: neighbours with equal status and run share one."""
    spans: list[Span] = []
    for position, status, run_id in sorted(rows, key=lambda row: row[0]):
        previous = spans[-1] if spans else None
        if (
            previous is not None
            and position == previous.last + 1
            and (previous.status, previous.run_id) == (status, run_id)
        ):
            spans[-1] = Span(previous.first, position, status, run_id, change_seq)
        else:
            spans.append(Span(position, position, status, run_id, change_seq))
    return spans


def rewrite(spans: Sequence[Span], edits: Sequence[Edit], change_seq: int) -> Rewrite:
    """Apply ``edits`` (sorted by first, disjoint) to ``spans`` (sorted, disjoint): what to replace.

    Only spans an edit overlaps are replaced; the cost is the spans and edits given, whatever their
    lengths.
    """
    result = Rewrite(removed=[], added=[], changed=0)
    edit_index = 0
    for span in spans:
        while edit_index < len(edits) and edits[edit_index].last < span.first:
            edit_index += 1
        pieces: list[Span] = []
        cursor = span.first
        touched = False
        index = edit_index
        while index < len(edits) and edits[index].first <= span.last:
            edit = edits[index]
            start, end = max(edit.first, span.first), min(edit.last, span.last)
            if start > cursor:
                pieces.append(Span(cursor, start - 1, span.status, span.run_id, span.change_seq))
            run_id = span.run_id if edit.run_id == KEEP_RUN else edit.run_id
            if (edit.status, run_id) != (span.status, span.run_id):
                touched = True
                result.changed += end - start + 1
                pieces.append(Span(start, end, edit.status, run_id, change_seq))
            else:
                pieces.append(Span(start, end, span.status, span.run_id, span.change_seq))
            cursor = end + 1
            if edit.last > span.last:
                break  # the edit goes on into the next span
            index += 1
        if not touched:
            continue
        if cursor <= span.last:
            pieces.append(Span(cursor, span.last, span.status, span.run_id, span.change_seq))
        result.removed.append(span.first)
        result.added.extend(_merged(pieces))
    return result


def _merged(pieces: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for piece in pieces:
        previous = merged[-1] if merged else None
        if previous is not None and (previous.status, previous.run_id) == (piece.status, piece.run_id):
            seq = max(previous.change_seq, piece.change_seq)
            merged[-1] = Span(previous.first, piece.last, piece.status, piece.run_id, seq)
        else:
            merged.append(piece)
    return merged

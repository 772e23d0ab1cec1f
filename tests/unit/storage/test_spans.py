"""Span arithmetic: a write over spans gives exactly what the same write does partition by partition."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from control_plane.key_spaces import intervals
from control_plane.storage._spans import KEEP_RUN, Edit, Span, rewrite, spans_of

STATUSES = ("pending", "queued", "materialized", "failed")
RUNS = (None, "r1", "r2")


def _apply(spans: list[Span], edits: list[Edit], sequence: int) -> list[Span]:
    result = rewrite(spans, edits, sequence)
    kept = [span for span in spans if span.first not in set(result.removed)]
    return sorted(kept + result.added, key=lambda span: span.first)


def _by_position(spans: list[Span]) -> dict[int, tuple[str, str | None]]:
    return {p: (s.status, s.run_id) for s in spans for p in range(s.first, s.last + 1)}


positions_state = st.dictionaries(
    st.integers(0, 60), st.tuples(st.sampled_from(STATUSES), st.sampled_from(RUNS)), max_size=40
)
edit_strategy = st.lists(
    st.tuples(
        st.integers(0, 70),
        st.integers(0, 8),
        st.sampled_from(STATUSES),
        st.sampled_from((KEEP_RUN, *RUNS)),
    ),
    max_size=6,
)


def _disjoint(raw: list[tuple[int, int, str, str | None]]) -> list[Edit]:
    edits: list[Edit] = []
    for first, length, status, run_id in sorted(raw, key=lambda edit: (edit[0], edit[1])):
        if edits and first <= edits[-1].last:
            continue
        edits.append(Edit(first, first + length, status, run_id))
    return edits


@given(positions_state, edit_strategy)
def test_a_rewrite_matches_the_same_write_partition_by_partition(
    state: dict[int, tuple[str, str | None]], raw_edits: list[tuple[int, int, str, str | None]]
) -> None:
    spans = spans_of((position, status, run) for position, (status, run) in state.items())
    edits = _disjoint(raw_edits)
    expected = dict(state)
    changed = 0
    for edit in edits:
        for position in range(edit.first, edit.last + 1):
            if position in expected:
                status, run = expected[position]
                new = (edit.status, run if edit.run_id == KEEP_RUN else edit.run_id)
                changed += new != (status, run)
                expected[position] = new
    after = _apply(spans, edits, sequence=9)
    assert _by_position(after) == expected
    assert rewrite(spans, edits, 9).changed == changed
    # Spans stay disjoint and ordered, and only what changed carries the new sequence.
    assert all(a.last < b.first for a, b in pairwise(after))
    for span in after:
        if span.change_seq == 9:
            assert any(e.first <= span.last and span.first <= e.last for e in edits)


def test_spans_of_merges_neighbours_with_one_status_and_run_only() -> None:
    rows = [(0, "queued", "r1"), (1, "queued", "r1"), (2, "queued", "r2"), (4, "queued", "r2")]
    assert [(s.first, s.last, s.run_id) for s in spans_of(rows)] == [(0, 1, "r1"), (2, 2, "r2"), (4, 4, "r2")]


def test_a_run_over_part_of_a_pending_span_splits_it_in_three() -> None:
    result = rewrite([Span(0, 3652, "pending", None, 0)], [Edit(100, 199, "queued", "r1")], 5)
    assert result.removed == [0]
    assert [(s.first, s.last, s.status, s.run_id, s.change_seq) for s in result.added] == [
        (0, 99, "pending", None, 0),
        (100, 199, "queued", "r1", 5),
        (200, 3652, "pending", None, 0),
    ]
    assert result.changed == 100


def test_intervals_merge_neighbouring_positions() -> None:
    assert intervals([5, 1, 2, 3, 9, 2]) == [(1, 3), (5, 5), (9, 9)]
    assert intervals([]) == []

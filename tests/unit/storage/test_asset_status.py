"""AssetStatusStore: the latest status of each asset partition across runs, upserted in bulk."""

from __future__ import annotations

from code_server.asset_key import AssetKey
from control_plane.records import PartitionStatus
from control_plane.storage import AssetStatusStore, Database

A, B = AssetKey(["warehouse", "a"]), AssetKey("b")
P = PartitionStatus


def test_the_latest_status_wins(database: Database) -> None:
    store = AssetStatusStore(database)
    store.upsert(A, ["2024-01-01", "2024-01-02"], P.FAILED, "r1")
    store.upsert(A, ["2024-01-02", "2024-01-03"], P.MATERIALIZED, "r2")
    store.upsert(B, ["2024-01-01"], P.MATERIALIZED, "r3")
    assert store.get(A) == {
        "2024-01-01": (P.FAILED, "r1"),
        "2024-01-02": (P.MATERIALIZED, "r2"),
        "2024-01-03": (P.MATERIALIZED, "r2"),
    }
    assert store.get(A, ["2024-01-03", "2024-12-31"]) == {"2024-01-03": (P.MATERIALIZED, "r2")}
    assert store.get(A, []) == {}
    assert store.counts(A) == {P.FAILED: 1, P.MATERIALIZED: 2}
    assert store.counts(AssetKey("unknown")) == {}


def test_an_unpartitioned_asset_has_the_empty_key(database: Database) -> None:
    store = AssetStatusStore(database)
    store.upsert(B, [""], P.MATERIALIZED, None)
    assert store.get(B) == {"": (P.MATERIALIZED, None)}


def test_a_key_repeated_in_one_call_is_written_once(database: Database) -> None:
    store = AssetStatusStore(database)
    store.upsert(A, ["k", "k"], P.MATERIALIZED, "r1")
    assert store.get(A) == {"k": (P.MATERIALIZED, "r1")}


def test_upserting_ten_thousand_partitions(database: Database) -> None:
    store = AssetStatusStore(database)
    keys = [f"k{index:05d}" for index in range(10_000)]
    store.upsert(A, keys[:6_000], P.FAILED, "r1")
    store.upsert(A, keys[4_000:], P.MATERIALIZED, "r2")
    assert store.counts(A) == {P.FAILED: 4_000, P.MATERIALIZED: 6_000}
    latest = store.get(A, keys[3_990:4_010])
    assert [latest[key][0] for key in keys[3_990:4_010]] == [P.FAILED] * 10 + [P.MATERIALIZED] * 10

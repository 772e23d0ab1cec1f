import pytest

from code_server.asset_key import AssetKey
from code_server.assets import AssetDep, AssetIn, asset
from code_server.backfill_policy import BackfillPolicy, BackfillPolicyType
from code_server.errors import DefinitionError
from code_server.partitions.static import StaticPartitionsDefinition


def test_asset_key_forms_are_equal_and_ordered() -> None:
    assert AssetKey("a") == AssetKey(["a"]) == AssetKey.from_user_string("a")
    assert AssetKey(["wh", "events"]).to_user_string() == "wh/events"
    assert AssetKey.from_user_string("wh/events") == AssetKey(["wh", "events"])
    assert sorted([AssetKey("b"), AssetKey("a")]) == [AssetKey("a"), AssetKey("b")]
    assert len({AssetKey("a"), AssetKey(["a"])}) == 1


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "é", "a\n"])
def test_asset_key_rejects_bad_parts(bad: str) -> None:
    with pytest.raises(DefinitionError, match="Invalid asset key part"):
        AssetKey(["ok", bad])


def test_asset_reads_arguments_as_inputs_and_keeps_context_out() -> None:
    partitions = StaticPartitionsDefinition(["x"])

    @asset(partitions_def=partitions, group_name="g", tags={"team": "data"})
    def child(context, parent, other):  # type: ignore[no-untyped-def]
        """Child docs."""

    assert child.key == AssetKey("child")
    assert child.takes_context
    assert child.input_names == ("parent", "other")
    assert child.node.parent_keys == (AssetKey("parent"), AssetKey("other"))
    assert child.node.description == "Child docs."
    assert child.group_name == "g"
    assert child.node.tags == {"team": "data"}
    assert child.partitions_def is partitions


def test_bare_asset_and_key_prefix_and_ins_key() -> None:
    @asset
    def plain():  # type: ignore[no-untyped-def]
        return 1

    @asset(key_prefix=["wh"], ins={"upstream": AssetIn(key="raw/events")}, deps=["side"])
    def prefixed(upstream):  # type: ignore[no-untyped-def]
        return upstream

    assert plain.key == AssetKey("plain") and not plain.takes_context
    assert plain() == 1
    assert prefixed.key == AssetKey(["wh", "prefixed"])
    assert prefixed.deps == (
        AssetDep(AssetKey(["raw", "events"]), input_name="upstream"),
        AssetDep(AssetKey("side")),
    )


def test_asset_dep_accepts_strings_and_assets() -> None:
    @asset
    def parent():  # type: ignore[no-untyped-def]
        pass

    assert AssetDep("parent").asset_key == AssetKey("parent")
    assert AssetDep(parent).asset_key == AssetKey("parent")  # type: ignore[arg-type]


def test_asset_errors_name_the_problem() -> None:
    with pytest.raises(DefinitionError, match=r"declares ins \['missing'\]"):

        @asset(ins={"missing": AssetIn()})
        def a():  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(DefinitionError, match="'b' depends on 'x' twice"):

        @asset(deps=["x"])
        def b(x):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(DefinitionError, match="'c' depends on itself"):

        @asset(deps=["c"])
        def c():  # type: ignore[no-untyped-def]
            pass


def test_backfill_policies() -> None:
    assert BackfillPolicy.single_run().policy_type is BackfillPolicyType.SINGLE_RUN
    assert BackfillPolicy.single_run().max_partitions_per_run is None
    assert BackfillPolicy.multi_run(5).max_partitions_per_run == 5
    assert BackfillPolicy.multi_run().max_partitions_per_run == 1
    assert repr(BackfillPolicy.multi_run(5)) == "BackfillPolicy.multi_run(5)"
    with pytest.raises(DefinitionError, match=">= 1"):
        BackfillPolicy.multi_run(0)

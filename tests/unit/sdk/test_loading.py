import textwrap
from pathlib import Path

import pytest

from code_server.asset_key import AssetKey
from code_server.assets import asset
from code_server.definitions import Definitions
from code_server.errors import DefinitionError, UnknownAssetError, UserCodeLoadError
from code_server.loading import load_definitions


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_module_scope_definitions_are_collected(tmp_path: Path) -> None:
    write(
        tmp_path / "scope_defs.py",
        """
        from code_server.assets import asset
        from code_server.sensors import sensor

        @asset(deps=["raw"])
        def cooked():
            pass

        alias = cooked

        @sensor(target=cooked)
        def watch():
            pass
        """,
    )
    defs = load_definitions(module_name="scope_defs", working_directory=tmp_path)
    assert list(defs.assets) == [AssetKey("cooked")]
    assert list(defs.sensors) == ["watch"]
    assert defs.external_asset_keys == (AssetKey("raw"),)
    assert defs.asset_graph.node(AssetKey("raw")).is_external
    with pytest.raises(UnknownAssetError, match="'raw' is external"):
        defs.get_asset(AssetKey("raw"))


def test_explicit_definitions_object_wins(tmp_path: Path) -> None:
    write(
        tmp_path / "explicit.py",
        """
        from code_server.assets import asset
        from code_server.definitions import Definitions

        @asset
        def kept():
            pass

        @asset
        def left_out():
            pass

        defs = Definitions(assets=[kept])
        """,
    )
    defs = load_definitions(python_file=tmp_path / "explicit.py")
    assert list(defs.assets) == [AssetKey("kept")]


def test_import_error_is_reported_with_its_cause(tmp_path: Path) -> None:
    write(tmp_path / "broken.py", "import definitely_not_a_module\n")
    with pytest.raises(UserCodeLoadError, match=r"broken\.py.*definitely_not_a_module") as raised:
        load_definitions(python_file=tmp_path / "broken.py")
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)
    with pytest.raises(UserCodeLoadError, match="does not exist"):
        load_definitions(python_file=tmp_path / "absent.py")
    with pytest.raises(UserCodeLoadError, match="exactly one"):
        load_definitions()


def test_fresh_load_sees_changed_code(tmp_path: Path) -> None:
    module = write(
        tmp_path / "changing.py", "from code_server.assets import asset\n@asset\ndef one():\n    pass\n"
    )
    assert list(load_definitions(module_name="changing", working_directory=tmp_path).assets) == [
        AssetKey("one")
    ]
    module.write_text("from code_server.assets import asset\n@asset\ndef second():\n    pass\n")
    reloaded = load_definitions(module_name="changing", working_directory=tmp_path, fresh=True)
    assert list(reloaded.assets) == [AssetKey("second")]


def test_duplicate_names_are_rejected() -> None:
    @asset(name="same")
    def first():  # type: ignore[no-untyped-def]
        pass

    @asset(name="same")
    def second():  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(DefinitionError, match="'same' is defined twice"):
        Definitions(assets=[first, second])

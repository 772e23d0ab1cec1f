"""Regenerate the Python modules and type stubs of the wire contracts from ``protos/``.

Usage::

    python scripts/gen_protos.py           # write partita/<service>/v1/*_pb2*.py[i] and __init__.py files
    python scripts/gen_protos.py --check   # exit 1, listing the files that differ, if they are stale

Protos are compiled with ``-I protos`` straight into the repository root, so ``protos/partita/common/v1/
assets.proto`` becomes ``partita/common/v1/assets_pb2.py`` and the generated imports (``from
partita.common.v1 import ...``) work without rewriting. gRPC modules are generated only for files that
declare a service. Both modes generate into a temporary directory first, so a failed compile never
leaves half-written files behind, and ``--check`` compares without touching the working tree.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
#: Top-level package of the generated code; its own ``__init__.py`` belongs to the project, not to us.
GENERATED_ROOT = "partita"
#: Suffixes of the files protoc writes; anything under ``partita/`` with one of them is ours.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
REGENERATE_HINT = "run `python scripts/gen_protos.py` (or `make protos`) and commit the result"


class ProtocError(RuntimeError):
    """protoc or one of its plugins failed; the message says which step."""


def proto_files() -> list[Path]:
    """Every ``.proto`` under ``protos/``, relative to it, in a stable order."""
    return sorted(path.relative_to(PROTO_ROOT) for path in PROTO_ROOT.rglob("*.proto"))


def find_plugin(name: str) -> str:
    """Locate a protoc plugin installed next to this interpreter (the venv), or on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise ProtocError(
            f"{name} not found next to {sys.executable} or on PATH: install mypy-protobuf "
            "(pip install -e '.[dev]')."
        )
    return found


def run_protoc(arguments: list[str], step: str) -> None:
    well_known_types = str(resources.files("grpc_tools") / "_proto")
    command = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known_types}", *arguments]
    if protoc.main(command) != 0:
        raise ProtocError(f"protoc failed while generating {step}; see the errors above.")


def generate(out_dir: Path) -> None:
    """Write every generated file (and the packages' ``__init__.py``) under ``out_dir``."""
    protos = [str(path) for path in proto_files()]
    if not protos:
        raise ProtocError(f"No .proto files under {PROTO_ROOT}.")
    descriptor_set = out_dir / "descriptors.binpb"
    run_protoc(
        [
            f"--plugin=protoc-gen-mypy={find_plugin('protoc-gen-mypy')}",
            f"--python_out={out_dir}",
            f"--mypy_out=quiet:{out_dir}",
            f"--descriptor_set_out={descriptor_set}",
            *protos,
        ],
        "messages",
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    descriptor_set.unlink()
    with_services = sorted(file.name for file in files if file.service)
    if with_services:
        run_protoc(
            [
                f"--plugin=protoc-gen-mypy_grpc={find_plugin('protoc-gen-mypy_grpc')}",
                f"--grpc_python_out={out_dir}",
                f"--mypy_grpc_out=quiet:{out_dir}",
                *with_services,
            ],
            "gRPC services",
        )
    for package_dir in sorted({path.parent for path in proto_files()}):
        write_init_files(out_dir, package_dir)


def write_init_files(out_dir: Path, package_dir: Path) -> None:
    """Make ``package_dir`` and its parents below ``partita/`` importable packages."""
    for directory in (package_dir, *package_dir.parents):
        if directory == Path(GENERATED_ROOT) or GENERATED_ROOT not in directory.parts:
            break
        init = out_dir / directory / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text(
            f'"""Generated from protos/{directory.as_posix()} by scripts/gen_protos.py; do not edit."""\n'
        )


def generated_files(root: Path) -> dict[str, bytes]:
    """The generated files under ``root``, by path relative to it (``partita/.../x_pb2.py``)."""
    files: dict[str, bytes] = {}
    base = root / GENERATED_ROOT
    if not base.is_dir():
        return files
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(root)
        if "__pycache__" in relative.parts or not path.is_file():
            continue
        is_package_init = path.name == "__init__.py" and path.parent != base
        if path.name.endswith(GENERATED_SUFFIXES) or (is_package_init and _is_generated_init(path)):
            files[relative.as_posix()] = path.read_bytes()
    return files


def _is_generated_init(path: Path) -> bool:
    return path.read_text(errors="replace").startswith('"""Generated from protos/')


def differences(fresh: dict[str, bytes], committed: dict[str, bytes]) -> list[tuple[str, str]]:
    """``(state, path)`` for each file that is missing, changed, or generated by no .proto any more."""
    found = []
    for name in sorted(fresh.keys() | committed.keys()):
        if name not in committed:
            found.append(("missing", name))
        elif name not in fresh:
            found.append(("stale", name))
        elif fresh[name] != committed[name]:
            found.append(("changed", name))
    return found


def sync(fresh: dict[str, bytes], committed: dict[str, bytes]) -> list[str]:
    """Make the working tree match ``fresh``: write new and changed files, delete stale ones."""
    done = []
    for state, name in differences(fresh, committed):
        target = ROOT / name
        if state == "stale":
            target.unlink()
            done.append(f"deleted {name}")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(fresh[name])
            done.append(f"wrote {name}")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 listing the generated files that are stale"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="partita-protos-") as scratch:
        try:
            generate(Path(scratch))
        except ProtocError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        fresh = generated_files(Path(scratch))
    committed = generated_files(ROOT)
    if args.check:
        stale = differences(fresh, committed)
        if stale:
            print(f"Generated protobuf code is out of date with protos/; {REGENERATE_HINT}:", file=sys.stderr)
            for state, name in stale:
                print(f"  {state}: {name}", file=sys.stderr)
            return 1
        print(f"Generated protobuf code is up to date ({len(fresh)} files).")
        return 0
    changes = sync(fresh, committed)
    for line in changes:
        print(line)
    print(f"{len(fresh)} generated files, {len(changes)} updated.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

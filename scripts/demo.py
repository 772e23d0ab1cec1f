"""`make demo`: the embedded default, end to end, with the commands a user would type.

1. `partita dev -m examples.guide`: a code server for the backfill guide's examples, and the control
   plane on SQLite with the local launcher.
2. `partita backfill launch ... --dry-run`, then for real: the guide's single-run `events` asset over
   January 2024 (ONE run whose time window is the month), and the schedule example's two assets
   through their static mapping (asset_b waits for asset_a).
3. `partita backfill status ID --watch` follows each to the end; `partita runs list` shows the runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTITA = [sys.executable, "-m", "partita.cli"]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="partita-demo-") as workdir:
        env = {**os.environ, "PARTITA_EXAMPLE_DATA": str(Path(workdir) / "warehouse")}
        dev = subprocess.Popen(
            [*PARTITA, "dev", "-m", "examples.guide", "--location-name", "guide", "--port", "0",
             "--db", f"sqlite:///{workdir}/partita.db", "--worker-env", "PARTITA_EXAMPLE_DATA"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            address = _wait_for_address(dev)
            env["PARTITA_CONTROL_PLANE"] = address
            print(f"Embedded control plane at {address}\n")
            _show("backfill", "launch", "--location", "guide", "--select", "events",
                  "--from", "2024-01-01", "--to", "2024-01-31", "--dry-run", env=env)  # fmt: skip
            events = _launch(env, "--select", "events", "--from", "2024-01-01", "--to", "2024-01-31",
                             "--title", "January events")  # fmt: skip
            mapped = _launch(env, "--select", "asset_a,asset_b", "--partitions", "foo_a")
            code = 0
            for backfill_id in (events, mapped):
                code |= _show("backfill", "status", backfill_id, "--watch", env=env)
                _show("runs", "list", "--backfill", backfill_id, env=env)
            written = sorted(p.name for p in (Path(workdir) / "warehouse" / "events").glob("*.json"))
            print(f"The events asset wrote {written}: one file for the whole month, from one run.")
            return code
        finally:
            dev.terminate()
            dev.wait(30)


def _wait_for_address(dev: subprocess.Popen[str]) -> str:
    assert dev.stdout is not None
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert dev.stdout is not None
        for line in dev.stdout:
            match = re.search(r"control plane listening on (\S+)", line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(120) or not found:
        raise SystemExit("partita dev did not start; run it by hand to see why.")
    return found[0]


def _launch(env: dict[str, str], *arguments: str) -> str:
    command = [*PARTITA, "backfill", "launch", "--location", "guide", "--json", *arguments]
    print("$ partita", " ".join(command[len(PARTITA) :]))
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    backfill_id: str = json.loads(result.stdout)["id"]
    print(f"launched backfill {backfill_id}\n")
    return backfill_id


def _show(*arguments: str, env: dict[str, str]) -> int:
    print("$ partita", " ".join(arguments))
    code = subprocess.run([*PARTITA, *arguments], cwd=ROOT, env=env, check=False).returncode
    print()
    return code


if __name__ == "__main__":
    sys.exit(main())

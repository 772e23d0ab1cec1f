"""The quick-start demo: the backfill guide's examples, run for real.

1. Evaluates the guide's sensor and schedule in process and prints the backfills they request.
2. Runs the guide's single-run ``events`` asset over January 2024 as ONE run through
   ``partita execute-run`` (the run worker), and prints the events it reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from code_server.loading import load_definitions  # noqa: E402
from code_server.testing import evaluate_schedule, evaluate_sensor  # noqa: E402


def show_requests() -> None:
    sensor_defs = load_definitions(module_name="examples.backfill_asset_from_partitions_by_assets")
    for sensor in sensor_defs.sensors.values():
        for request in evaluate_sensor(sensor, sensor_defs).run_requests:
            print(f"sensor {sensor.name}: backfill {request.backfill}")
    schedule_defs = load_definitions(module_name="examples.backfill_asset_from_asset_partitions")
    for schedule in schedule_defs.schedules.values():
        for request in evaluate_schedule(schedule, schedule_defs).run_requests:
            selection = [key.to_user_string() for key in request.asset_selection or ()]
            print(
                f"schedule {schedule.name}: backfill of {selection}: {request.backfill}, tags {dict(request.tags)}"
            )


def run_single_run_backfill() -> None:
    with tempfile.TemporaryDirectory() as data:
        command = [
            sys.executable, "-m", "partita.cli", "execute-run",
            "-m", "examples.single_run_backfill_asset",
            "--run-id", "demo-run", "--assets", "events", "--partition-range", "2024-01-01...2024-01-31",
        ]  # fmt: skip
        env = {**os.environ, "PARTITA_EXAMPLE_DATA": data}
        print("$", " ".join(command[2:]))
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            print("  event:", json.loads(line))
        written = sorted(path.name for path in (Path(data) / "events").glob("*.json"))
        print(f"run exited {result.returncode}; files written: {written}")
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            raise SystemExit(result.returncode)


if __name__ == "__main__":
    show_requests()
    run_single_run_backfill()

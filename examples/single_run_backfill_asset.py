# The guide's single-run backfill example, with only the import changed. The helper functions the
# guide leaves undefined are at the bottom: they stand in for a warehouse with local files.
from code_server import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    asset,
)


@asset(
    partitions_def=DailyPartitionsDefinition(start_date="2020-01-01"),
    backfill_policy=BackfillPolicy.single_run(),
    deps=[AssetKey("raw_events")],
)
def events(context: AssetExecutionContext) -> None:
    start_datetime, end_datetime = context.partition_time_window

    input_data = read_data_in_datetime_range(start_datetime, end_datetime)
    output_data = compute_events_from_raw_events(input_data)

    overwrite_data_in_datetime_range(start_datetime, end_datetime, output_data)


# --- Helpers the guide leaves undefined --------------------------------------------------------
import json  # noqa: E402
import os  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

#: Where the example "warehouse" lives; the tests point it at a temporary directory.
DATA_DIRECTORY_ENV = "PARTITA_EXAMPLE_DATA"


def _data_directory() -> Path:
    return Path(os.environ.get(DATA_DIRECTORY_ENV, ".partita/example-data"))


def read_data_in_datetime_range(start: datetime, end: datetime) -> list[dict[str, str]]:
    """One synthetic raw event per hour of the window."""
    hours = int((end - start).total_seconds() // 3600)
    return [{"at": (start + timedelta(hours=hour)).isoformat()} for hour in range(hours)]


def compute_events_from_raw_events(raw_events: list[dict[str, str]]) -> dict[str, int]:
    """Count events per day."""
    counts: dict[str, int] = {}
    for raw_event in raw_events:
        day = raw_event["at"][:10]
        counts[day] = counts.get(day, 0) + 1
    return counts


def overwrite_data_in_datetime_range(start: datetime, end: datetime, data: dict[str, int]) -> None:
    """Write one file per run, named by the window, replacing what a previous run wrote."""
    directory = _data_directory() / "events"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{start.date().isoformat()}_{end.date().isoformat()}.json"
    target.write_text(json.dumps({"start": start.isoformat(), "end": end.isoformat(), "counts": data}))

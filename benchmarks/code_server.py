"""Code-server benchmark: a generated location of 1,000 daily-partitioned assets (chains of 10).

Prints: time from spawn to first answer; a full definitions fetch (time and bytes on the wire);
median evaluation of a no-op sensor and of one returning a partitioned run request.
Run: ``.venv/bin/python benchmarks/code_server.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from code_server.client import CodeServerClient  # noqa: E402
from code_server.server.spawn import spawn_code_server  # noqa: E402
from partita.codeserver.v1 import code_server_pb2, code_server_pb2_grpc  # noqa: E402

REPEATS = 200
DAGSTER = {"start": "1.4 s", "fetch": "339 ms / 2.6 MB", "noop": "2.4 ms", "partitioned": "24 ms"}
TARGETS = {"start": "< 1 s", "fetch": "< 50 ms / < 500 KB", "noop": "< 1 ms", "partitioned": "< 1 ms"}


def main() -> None:
    started = time.perf_counter()
    server = spawn_code_server(
        module_name="tests.fixtures.generated_location",
        working_directory=str(ROOT),
        environment={"PARTITA_GENERATED_ASSETS": "1000", "PARTITA_GENERATED_CHAIN": "10"},
    )
    try:
        with CodeServerClient(server.address) as client:
            client.server_info(timeout=10)
            spawn_to_answer = time.perf_counter() - started
            fetch_times, wire_bytes = [], 0
            with grpc.insecure_channel(
                server.address, options=[("grpc.max_receive_message_length", 1 << 26)]
            ) as channel:
                stub = code_server_pb2_grpc.CodeServerStub(channel)  # type: ignore[no-untyped-call]
                for _ in range(20):
                    begin = time.perf_counter()
                    chunks = list(stub.ListDefinitions(code_server_pb2.ListDefinitionsRequest()))
                    fetch_times.append(time.perf_counter() - begin)
                wire_bytes = sum(chunk.ByteSize() for chunk in chunks)
            decode_times = []
            for _ in range(5):
                begin = time.perf_counter()
                snapshot = client.list_definitions()
                decode_times.append(time.perf_counter() - begin)
            assert len(snapshot.assets) == 1000
            noop = _median_call(lambda: client.evaluate_sensor("noop_sensor"))
            partitioned = _median_call(lambda: client.evaluate_sensor("partitioned_run_sensor"))
    finally:
        server.stop()
    rows = [
        ("spawn to first answer", f"{spawn_to_answer * 1000:.0f} ms", TARGETS["start"], DAGSTER["start"]),
        (
            "definitions fetch (wire)",
            f"{statistics.median(fetch_times) * 1000:.1f} ms / {wire_bytes / 1024:.0f} KB",
            TARGETS["fetch"],
            DAGSTER["fetch"],
        ),
        ("definitions fetch + decode to SDK", f"{statistics.median(decode_times) * 1000:.1f} ms", "", ""),
        ("no-op sensor (median)", f"{noop * 1000:.2f} ms", TARGETS["noop"], DAGSTER["noop"]),
        (
            "partitioned-run sensor (median)",
            f"{partitioned * 1000:.2f} ms",
            TARGETS["partitioned"],
            DAGSTER["partitioned"],
        ),
    ]
    print(f"{'measure':36} {'partita':>22} {'target':>20} {'dagster 1.13':>18}")
    for name, value, target, dagster in rows:
        print(f"{name:36} {value:>22} {target:>20} {dagster:>18}")


def _median_call(call: object) -> float:
    timings = []
    for _ in range(REPEATS):
        begin = time.perf_counter()
        call()  # type: ignore[operator]
        timings.append(time.perf_counter() - begin)
    return statistics.median(timings)


if __name__ == "__main__":
    main()

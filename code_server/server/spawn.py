"""Start a code server as a child process and learn its address (for ``partita dev`` and tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_LISTENING = re.compile(r"listening on (\S+)")


class CodeServerStartError(RuntimeError):
    """The code server process exited or stayed silent instead of announcing its address."""


@dataclass
class SpawnedCodeServer:
    process: subprocess.Popen[str]
    address: str
    output: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def spawn_code_server(
    *,
    module_name: str | None = None,
    python_file: str | None = None,
    working_directory: str | None = None,
    location_name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    image: str | None = None,
    environment: Mapping[str, str] | None = None,
    start_timeout: float = 30.0,
    extra_arguments: Sequence[str] = (),
) -> SpawnedCodeServer:
    """Start ``partita code-server``; ``extra_arguments`` are appended (``--tls-cert``, ...)."""
    command = [sys.executable, "-m", "partita.cli", "code-server", "--host", host, "--port", str(port)]
    command += ["-m", module_name] if module_name else ["-f", str(python_file)]
    if working_directory:
        command += ["--working-directory", working_directory]
    if location_name:
        command += ["--location-name", location_name]
    if image:
        command += ["--image", image]
    command += list(extra_arguments)
    process = subprocess.Popen(
        command,
        cwd=working_directory or None,
        env={**os.environ, **(environment or {}), "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    announced = threading.Event()
    address: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not address:
                address.append(match.group(1))
                announced.set()
        announced.set()

    threading.Thread(target=pump, name="code-server-output", daemon=True).start()
    if not announced.wait(start_timeout) or not address:
        process.kill()
        process.wait()
        raise CodeServerStartError(
            "Code server did not start:\n" + "\n".join(output[-30:])
            if output
            else "Code server did not start."
        )
    return SpawnedCodeServer(process=process, address=address[0], output=output)

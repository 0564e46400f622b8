"""The real `tidelog serve` process for integration tests.

Owns: starting the broker as a subprocess on a free loopback port with its own data
directory, waiting for its "tidelog ready" log line, and stopping it (SIGTERM for a
clean stop whose exit code is checked, SIGKILL for a crash). Its stderr goes to a log
file inside the data directory so a failing test can show what the broker said.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BrokerProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        node_id: int = 1,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.node_id = node_id
        self.args = list(args)
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-broker-{node_id}.log"
        self._log_start = 0  # where this run's lines begin: a restart appends to the log

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tidelog.broker.cli",
            "serve",
            "--listen",
            self.bootstrap,
            "--data-dir",
            str(self.data_dir),
            "--node-id",
            str(self.node_id),
            "--flush-interval-ms",
            "50",
            *self.args,
        ]

    def start(self) -> BrokerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log_file:
            self._log_start = log_file.tell()
            self.proc = subprocess.Popen(self.command(), stdout=log_file, stderr=log_file, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited during start-up code={self.proc.returncode}\n{self.output()}"
                )
            if self._ready_in_this_run():
                return
            time.sleep(0.05)
        raise RuntimeError(f"broker not ready after {READY_TIMEOUT_S}s\n{self.output()}")

    def _ready_in_this_run(self) -> bool:
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_start)
                return b"tidelog ready" in log_file.read()
        except FileNotFoundError:
            return False

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the crash case; nothing gets a chance to flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"broker did not stop on SIGTERM\n{self.output()}") from None
        return self.proc.returncode

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

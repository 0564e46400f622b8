"""A `tidelog serve` subprocess for `tidelog payments` (the embedded default).

Owns: starting the broker as a child process (`python -m tidelog.broker.cli serve`: a process,
not an import — payments never imports broker code), waiting for its "tidelog ready"
line, SIGKILL (the drill's crash) and SIGTERM (a clean stop). Its output goes to a log
file next to its data dir.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_S = 60.0


class BrokerStartError(RuntimeError):
    """The broker exited or did not get ready in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class BrokerProcess:
    data_dir: Path
    port: int
    node_id: int = 1
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"broker-{self.node_id}.log"

    def start(self) -> BrokerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
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
            "--durability",
            "wal",
            "--flush-interval-ms",
            "100",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(command, stdout=log_file, stderr=log_file, env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "tidelog ready" not in self.output():
            if self.proc.poll() is not None:
                raise BrokerStartError(
                    f"broker exited during start-up node={self.node_id} "
                    f"code={self.proc.returncode} log={self.log_path}"
                )
            if time.monotonic() > deadline:
                raise BrokerStartError(f"broker not ready node={self.node_id} log={self.log_path}")
            time.sleep(0.02)
        return self

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

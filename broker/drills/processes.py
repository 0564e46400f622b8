"""The drill's broker processes, treated as black boxes: a command line, signals, a log.

Owns: each `tidelog serve` subprocess a drill starts, its log file (outside the data
dir, so a handed-over data dir carries no log), and what is read from that log: the
`tidelog ready` line, `commits_read=N` on it, and lines matching a pattern with the
moment the drill first saw them (`LogWatch`). Guarantees: `kill` and `stop` leave no
process behind (SIGKILL if SIGTERM does not end it in time); a paused process is
resumed before it is killed or stopped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 60.0
FLUSH_INTERVAL_MS = 100
_COMMITS_READ = re.compile(r"tidelog ready .*?commits_read=(\d+)")
_ENDS = re.compile(r" ends=(\S+)")
_FIELD = re.compile(r"(\w+)=(\S+)")
_MESSAGE = re.compile(r"^\S+ \S+ \w+ [\w.]+: ")  # "date time LEVEL logger: "


class DrillError(Exception):
    """The drill could not run to its verdict (a broker did not start, the load stalled)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class StoreArgs:
    """How one broker reaches the bucket: its --object-store, --s3-endpoint, environment."""

    url: str
    endpoint: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class BrokerRun:
    node_id: int
    port: int
    data_dir: Path
    store: StoreArgs
    mode: str
    log_path: Path
    replaces: tuple[int, ...] = ()  # `--replace`: take these nodes' keys at start
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    terminated: bool = False  # SIGTERM sent

    def command(self) -> list[str]:
        endpoint = ["--s3-endpoint", self.store.endpoint] if self.store.endpoint else []
        return [
            sys.executable,
            "-m",
            "tidelog.broker.cli",
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--data-dir",
            str(self.data_dir),
            "--object-store",
            self.store.url,
            *endpoint,
            "--node-id",
            str(self.node_id),
            "--durability",
            self.mode,
            "--flush-interval-ms",
            str(FLUSH_INTERVAL_MS),
            *(["--replace", ",".join(map(str, self.replaces))] if self.replaces else []),
        ]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.store.env}
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(self.command(), stdout=log_file, stderr=log_file, env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "tidelog ready" not in self.output():
            if self.proc.poll() is not None:
                last = (self.output().strip().splitlines() or ["(no output)"])[-1]
                raise DrillError(
                    f"broker exited during start-up node={self.node_id} "
                    f"code={self.proc.returncode} log={self.log_path} last_line={last!r}"
                )
            if time.monotonic() > deadline:
                raise DrillError(f"broker not ready node={self.node_id} log={self.log_path}")
            time.sleep(0.02)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def lines_with(self, word: str) -> list[str]:
        return [line for line in self.output().splitlines() if word in line]

    def commits_read(self) -> int | None:
        found = _COMMITS_READ.search(self.output())
        return int(found.group(1)) if found else None

    def takeover_fields(self) -> dict[str, str]:
        """The key=value fields of its last line reporting the WAL replay at start-up
        (today "joined node=.. stream=.. took_over=.. commits_read=.. wal_batches_replayed=..");
        empty if it logged none."""
        lines = self.lines_with("wal_batches_replayed=")
        return dict(_FIELD.findall(lines[-1])) if lines else {}

    def takeover_lines(self) -> list[str]:
        """What it logged about taking the log over (sealing, taking over, adopting,
        joining, claiming), without the timestamp and logger."""
        words = ("sealed", "took over", "adopted", "joined", "claimed ownership")
        return [
            _MESSAGE.sub("", line)
            for line in self.output().splitlines()
            if any(w in line for w in words)
        ]

    def takeover_ends(self, topic: str, lines: str = "took over stream=") -> dict[int, int]:
        """Per partition of `topic`, the end offset the bucket held of it when this broker
        took it over (the `ends=` of its "took over" lines, or of `lines`, e.g. "adopted
        keys"): what a replacement cannot have lost. Empty if it took nothing over."""
        ends: dict[int, int] = {}
        for line in self.lines_with(lines):
            found = _ENDS.search(line)
            for item in found.group(1).split(",") if found else []:
                name, _, end = item.rpartition(":")
                partition = name.rpartition("-")[2]
                if name.rpartition("-")[0] == topic and partition.isdigit() and end.isdigit():
                    ends[int(partition)] = int(end)
        return ends

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets and state but answers nothing."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.running() and self.paused:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.paused = False

    def terminate(self) -> None:
        """SIGTERM (once), without waiting for the exit: `stop()` waits."""
        if self.running() and not self.terminated:
            assert self.proc is not None
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit code (SIGKILL and -9 if it does not stop in time)."""
        if self.proc is None:
            return 0
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.proc.returncode


class LogWatch:
    """Polls a broker's log and remembers when each pattern was first seen (drill clock)."""

    def __init__(self, broker: BrokerRun, patterns: Mapping[str, str], interval: float = 0.02):
        self._broker = broker
        self._patterns = {name: re.compile(p) for name, p in patterns.items()}
        self._interval = interval
        self._skip = len(broker.output())  # only what is logged from now on counts
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-logwatch", daemon=True)

    def __enter__(self) -> LogWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            text = self._broker.output()[self._skip :]
            now = time.monotonic()
            for name, pattern in self._patterns.items():
                if name not in self.seen and pattern.search(text):
                    self.seen[name] = now

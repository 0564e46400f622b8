"""One child process on loopback: started, ready by a condition, stopped, killed.

Owns: `free_port`/`free_ports`, and `ChildProcess`: a command line started with its
stdout and stderr appended to a log file, `wait_ready` (polls a condition, not a
duration, and fails fast with the log's tail when the child exits first), SIGSTOP and
SIGCONT, `stop` (the stop signal, then SIGKILL if it does not end in time) and `kill`
(SIGKILL). Guarantees: after `stop` or `kill` returns, the process has exited and been
reaped; a child whose start fails is not left running; a paused process is resumed
before it is stopped; `output_of_this_run` (what ready conditions read) starts where
this start began appending to the log, so a restart is not taken for ready on the
previous run's lines.

Imports nothing from tidelog: product code (drills, payments, bench) and tests start
their children here, and payments may import it without importing any broker code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

POLL_INTERVAL_S = 0.02
KILL_WAIT_S = 30.0


class ChildStartError(RuntimeError):
    """The child exited during start-up, or its ready condition did not hold in time.

    `summary` is one line naming the child and its log; the message adds the log's tail."""

    def __init__(self, summary: str, tail: str) -> None:
        super().__init__(f"{summary}\n{tail}")
        self.summary = summary
        self.tail = tail


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    return free_ports(1)[0]


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port now."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class ChildProcess:
    """A command run as a child process, its output appended to `log_path`.

    `env` is added to this process's environment; `stop_signal` is what `stop` sends
    first (SIGTERM; py-spy, for one, writes its output on SIGINT)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = dict(env or {})
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.terminated = False  # the stop signal was sent
        self.stop_timed_out = False  # and it had to be killed
        self._log_start = 0

    def start(self) -> Self:
        """Start the command (again, after an exit: the log is appended to); returns self."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with open(self.log_path, "ab") as log_file:
            self._log_start = log_file.tell()
            self.proc = subprocess.Popen(
                self.command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=self.cwd
            )
        self.paused = self.terminated = self.stop_timed_out = False
        return self

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Poll `ready()` until it holds; ChildStartError if the child exits first or
        `timeout` seconds pass (then it is killed). The message's first line names the
        child and its log; the log's tail follows."""
        assert self.proc is not None, "wait_ready before start"
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise ChildStartError(
                    f"{self.name} exited during start-up code={self.proc.returncode} "
                    f"log={self.log_path}",
                    self.tail(),
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ChildStartError(
                    f"{self.name} not {what} in time timeout_s={timeout:g} log={self.log_path}",
                    self.tail(),
                )
            time.sleep(POLL_INTERVAL_S)

    def output(self) -> str:
        """The whole log, every run's lines."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output_of_this_run(self) -> str:
        """What the log gained since the last `start`."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_start)
                return log_file.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:]) or "(no output)"

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

    def terminate(self) -> None:
        """The stop signal (once), without waiting for the exit: `stop()` waits."""
        if self.running() and not self.terminated:
            assert self.proc is not None
            self.resume()
            self.proc.send_signal(self.stop_signal)
            self.terminated = True

    def stop(self, timeout: float = 60.0) -> int:
        """The stop signal, then wait; the exit code (SIGKILL, -9 and `stop_timed_out`,
        if it does not end within `timeout`). 0 if it never started."""
        if self.proc is None:
            return 0
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop_timed_out = True
            self.kill()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL and reap: the crash case, nothing gets a chance to flush."""
        if self.running():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=KILL_WAIT_S)
        self.paused = False

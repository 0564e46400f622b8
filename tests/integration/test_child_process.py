"""The shared launcher (tidelog.broker.processes.child) on real, tiny child processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tidelog.broker.processes import ChildProcess, ChildStartError, free_ports

pytestmark = pytest.mark.integration

# Prints "ready" once it has set up its SIGTERM handling, then waits to be stopped.
OBEYS_SIGTERM = "import sys, time; print('ready', flush=True); time.sleep(600)"
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(600)"
)


def python(tmp_path: Path, code: str) -> ChildProcess:
    return ChildProcess("child", [sys.executable, "-c", code], log_path=tmp_path / "child.log")


def says_ready(child: ChildProcess) -> bool:
    return "ready" in child.output_of_this_run()


def test_ready_once_the_condition_holds_and_stopped_by_sigterm(tmp_path: Path) -> None:
    child = python(tmp_path, OBEYS_SIGTERM).start()
    child.wait_ready(lambda: says_ready(child), timeout=60)
    assert child.running()
    assert child.stop() == -15
    assert not child.running() and not child.stop_timed_out


def test_a_child_that_exits_during_start_up_fails_with_its_log(tmp_path: Path) -> None:
    child = python(tmp_path, "import sys; print('bad option'); sys.exit(3)").start()
    with pytest.raises(ChildStartError, match="child exited during start-up code=3") as info:
        child.wait_ready(lambda: says_ready(child), timeout=60)
    assert "bad option" in info.value.tail
    assert "\n" not in info.value.summary


def test_a_child_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    child = python(tmp_path, OBEYS_SIGTERM).start()
    with pytest.raises(ChildStartError, match="child not ready in time"):
        child.wait_ready(lambda: False, timeout=0.2)
    assert not child.running()


def test_a_child_that_ignores_sigterm_is_killed_when_stop_times_out(tmp_path: Path) -> None:
    child = python(tmp_path, IGNORES_SIGTERM).start()
    child.wait_ready(lambda: says_ready(child), timeout=60)
    assert child.stop(timeout=0.5) == -9
    assert child.stop_timed_out


def test_a_paused_child_is_resumed_and_stopped(tmp_path: Path) -> None:
    child = python(tmp_path, OBEYS_SIGTERM).start()
    child.wait_ready(lambda: says_ready(child), timeout=60)
    child.pause()
    assert child.paused
    assert child.stop() == -15


def test_a_restart_is_not_ready_on_the_previous_runs_lines(tmp_path: Path) -> None:
    child = python(tmp_path, OBEYS_SIGTERM).start()
    child.wait_ready(lambda: says_ready(child), timeout=60)
    child.kill()
    child.command = [sys.executable, "-c", "import time; time.sleep(600)"]
    child.start()
    assert "ready" in child.output() and not says_ready(child)
    child.kill()


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8

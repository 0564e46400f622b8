"""The embedded default broker of `tidelog payments`: one `tidelog serve` subprocess.

Owns: what payments starts (wal mode, uploads every 100 ms, the log `broker-N.log` next
to its data dir) on the shared launcher, tidelog.broker.processes.BrokerProcess, which
owns the rest: the free port, waiting for the "tidelog ready" line, SIGKILL (the drill's
crash) and SIGTERM (a clean stop, SIGKILL if it lingers). The broker is a process, not
an import: that launcher imports no broker code, and payments imports nothing else of
tidelog.broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from tidelog.broker.processes import BrokerProcess as SharedBrokerProcess
from tidelog.broker.processes import ChildStartError, free_port
from tidelog.broker.processes.serve import READY_TIMEOUT_S

FLUSH_INTERVAL_MS = 100

__all__ = ["BrokerProcess", "BrokerStartError", "free_port"]


class BrokerStartError(RuntimeError):
    """The broker exited or did not get ready in time (one line: node, code, log)."""


class BrokerProcess(SharedBrokerProcess):
    def __init__(self, data_dir: Path, port: int, node_id: int = 1) -> None:
        super().__init__(
            data_dir,
            port=port,
            node_id=node_id,
            durability="wal",
            flush_interval_ms=FLUSH_INTERVAL_MS,
            log_path=data_dir.parent / f"broker-{node_id}.log",
        )

    def start(self, timeout: float = READY_TIMEOUT_S) -> Self:
        try:
            return super().start(timeout)
        except ChildStartError as exc:
            raise BrokerStartError(exc.summary) from exc

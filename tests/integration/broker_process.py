"""The integration tests' `tidelog serve`: the shared launcher with the suite's defaults.

Owns: what the tests add to tidelog.broker.processes.BrokerProcess: uploads every 50 ms
(so a test waiting for the bucket waits little), the log beside the data dir (a failing
test can show what the broker said), and a stricter stop: a broker that SIGTERM does not
end in time is killed and fails the test. Everything else (free port, readiness on this
run's `tidelog ready` line, SIGKILL for a crash) is the shared launcher's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tidelog.broker.processes import BrokerProcess as SharedBrokerProcess
from tidelog.broker.processes import free_port

FLUSH_INTERVAL_MS = 50

__all__ = ["BrokerProcess", "free_port"]


class BrokerProcess(SharedBrokerProcess):
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        node_id: int = 1,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            data_dir,
            port=port,
            node_id=node_id,
            flush_interval_ms=FLUSH_INTERVAL_MS,
            args=args,
            env=env,
        )

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code. Killed and RuntimeError if SIGTERM
        does not end it within `timeout`."""
        assert self.proc is not None, "stop before start"
        code = super().stop(timeout)
        if self.stop_timed_out:
            raise RuntimeError(f"broker did not stop on SIGTERM\n{self.output()}")
        return code

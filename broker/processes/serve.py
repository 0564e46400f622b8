"""`tidelog serve` as a child process: the one launcher of the broker for drills,
payments, benchmarks and tests.

Owns: the command line (`python -m tidelog.broker.cli serve` with the options a caller
gives: listen port, data dir, node id, object store, S3 endpoint, durability, flush
interval, log level, `--replace`, anything else verbatim), its log file, and readiness:
the `tidelog ready` line of this run in the log, or, when the log level hides that line
(warning and above), the port accepting connections (the broker listens only once its
storage has recovered). Guarantees: `start` returns only once the broker serves, and
raises ChildStartError (with the log's tail) if it exits or is not ready in time; the
`ChildProcess` guarantees for stop and kill.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from tidelog.broker.processes.child import ChildProcess, free_port, port_accepts

READY_TIMEOUT_S = 60.0
READY_LINE = "tidelog ready"
_QUIET_LEVELS = ("warning", "error", "critical")


class BrokerProcess(ChildProcess):
    """One `tidelog serve` on 127.0.0.1 (a free port unless `port` is given).

    Options left None are the broker's own defaults. The log goes to `log_path`, by
    default beside the data dir (so a data dir handed to another broker carries none)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        http_port: int | None = None,
        node_id: int = 1,
        object_store: str | None = None,
        s3_endpoint: str | None = None,
        durability: str | None = None,
        flush_interval_ms: int | None = None,
        log_level: str | None = None,
        replaces: Sequence[int] = (),
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        # Its /metrics and status page: a free port too, so brokers side by side (a
        # cluster, a drill, the test suite) never contend for the default 9644.
        self.http_port = http_port or free_port()
        self.node_id = node_id
        self.object_store = object_store
        self.s3_endpoint = s3_endpoint
        self.durability = durability
        self.flush_interval_ms = flush_interval_ms
        self.log_level = log_level
        self.replaces = tuple(replaces)
        self.args = list(args)
        log = log_path or data_dir.parent / f"{data_dir.name}-broker-{node_id}.log"
        super().__init__(f"broker node={node_id}", [], log_path=log, env=env, cwd=cwd)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def serve_command(self) -> list[str]:
        options = {
            "--object-store": self.object_store,
            "--s3-endpoint": self.s3_endpoint,
            "--durability": self.durability,
            "--flush-interval-ms": self.flush_interval_ms,
            "--log-level": self.log_level,
            "--replace": ",".join(map(str, self.replaces)) or None,
        }
        given = [part for name, value in options.items() if value is not None
                 for part in (name, str(value))]  # fmt: skip
        # `--listeners` in args (its first listener on `port`) replaces `--listen`.
        listen = [] if "--listeners" in self.args else ["--listen", self.bootstrap]
        return [
            sys.executable, "-m", "tidelog.broker.cli", "serve",
            *listen,
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--data-dir", str(self.data_dir),
            "--node-id", str(self.node_id),
            *given,
            *self.args,
        ]  # fmt: skip

    def start(self, timeout: float = READY_TIMEOUT_S) -> Self:
        """Start it and wait until it serves; returns self."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.command = self.serve_command()
        super().start()
        self.wait_ready(self.ready, timeout)
        return self

    def ready(self) -> bool:
        if self.log_level in _QUIET_LEVELS:
            return port_accepts(self.port)
        return READY_LINE in self.output_of_this_run()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.stop()

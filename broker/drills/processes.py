"""The drill's brokers, treated as black boxes: a command line, signals, a log.

Owns: what a drill asks of each `tidelog serve` it starts (`BrokerRun`: the shared
launcher, tidelog.broker.processes.BrokerProcess, with the drill's store, durability
mode, flush interval and `--replace`; its log outside the data dir, so a handed-over
data dir carries no log) and what is read from that log: `commits_read=N` on the
`tidelog ready` line, the takeover lines, and lines matching a pattern with the moment
the drill first saw them (`LogWatch`). Guarantees: a broker that does not start raises
DrillError (one line); `kill` and `stop` leave no process behind (SIGKILL if SIGTERM
does not end it in time); a paused process is resumed before it is killed or stopped.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tidelog.broker.processes import BrokerProcess, ChildStartError
from tidelog.broker.processes.serve import READY_TIMEOUT_S

FLUSH_INTERVAL_MS = 100
_COMMITS_READ = re.compile(r"tidelog ready .*?commits_read=(\d+)")
_ENDS = re.compile(r" ends=(\S+)")
_FIELD = re.compile(r"(\w+)=(\S+)")
_MESSAGE = re.compile(r"^\S+ \S+ \w+ [\w.]+: ")  # "date time LEVEL logger: "


class DrillError(Exception):
    """The drill could not run to its verdict (a broker did not start, the load stalled)."""


@dataclass(frozen=True)
class StoreArgs:
    """How one broker reaches the bucket: its --object-store, --s3-endpoint, environment."""

    url: str
    endpoint: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


class BrokerRun(BrokerProcess):
    """One drill broker: node `node_id` on `port`, its data in `data_dir`, its log at
    `log_path`; `replaces`: the nodes whose keys it takes at start (`--replace`)."""

    def __init__(
        self,
        node_id: int,
        port: int,
        data_dir: Path,
        store: StoreArgs,
        mode: str,
        log_path: Path,
        replaces: tuple[int, ...] = (),
    ) -> None:
        super().__init__(
            data_dir,
            port=port,
            node_id=node_id,
            object_store=store.url,
            s3_endpoint=store.endpoint,
            durability=mode,
            flush_interval_ms=FLUSH_INTERVAL_MS,
            replaces=replaces,
            env=store.env,
            log_path=log_path,
        )
        self.store = store
        self.mode = mode

    def start(self, timeout: float = READY_TIMEOUT_S) -> Self:
        try:
            super().start(timeout)
        except ChildStartError as exc:
            last = (self.output_of_this_run().strip().splitlines() or ["(no output)"])[-1]
            raise DrillError(f"{exc.summary} last_line={last!r}") from exc
        return self

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

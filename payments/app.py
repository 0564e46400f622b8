"""The running application: write model, issuer, relay and projections wired together.

Owns: the data-dir layout (`write.db`, `read/<projection>.db`, `verifier.json`,
`broker/`), the threads that run the relay and the four projection runners, the
receipts stage's supervised process (when asked for), the command issuer (paced,
batched: one write transaction per batch) and `status()` — commands, events,
per-projection lag — for progress lines, the API and the bench. Guarantees: `stop()`
stops every thread and process it started and closes their clients; nothing here talks
to the broker except through confluent-kafka clients.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tidelog.payments.kafka_io import BrokerUnavailable, WatermarkReader
from tidelog.payments.outbox_relay import OutboxRelay
from tidelog.payments.process_manager import ReceiptsProcess
from tidelog.payments.projection_runner import ProjectionRunner, lag, stored_offsets
from tidelog.payments.projections import all_projections
from tidelog.payments.sqlite_db import connect
from tidelog.payments.state_machine import CommandError, parse_command
from tidelog.payments.workload import PlannedCommand
from tidelog.payments.write_model import WriteModel, open_write_db, outbox_counts

ISSUE_BATCH = 500
_MASKED = re.compile(r"\b(\w*_id|amount|open|refundable|captured|key)=\S+")


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def write_db(self) -> Path:
        return self.root / "write.db"

    @property
    def read_dir(self) -> Path:
        return self.root / "read"

    def read_db(self, projection: str) -> Path:
        return self.read_dir / f"{projection}.db"

    @property
    def verifier_result(self) -> Path:
        """The last verifier run's verdict (`verifier.save_result`), read by `/metrics`."""
        return self.root / "verifier.json"

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"

    def create(self) -> Layout:
        self.read_dir.mkdir(parents=True, exist_ok=True)
        open_write_db(self.write_db).close()
        return self


@dataclass
class IssuerCounts:
    issued: int = 0
    accepted: int = 0
    rejected: int = 0
    replayed: int = 0
    malformed: int = 0
    payments_done: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count_reason(self, reason: str) -> None:
        """Group rejections by reason, with ids and amounts masked (`amount=…`)."""
        key = _MASKED.sub(r"\1=…", reason)
        self.reasons[key] = self.reasons.get(key, 0) + 1


class CommandIssuer:
    """Issues planned commands at `rate` payments/s (0: as fast as it can), in batches."""

    def __init__(
        self,
        write: WriteModel,
        planned: Sequence[PlannedCommand],
        rate: float,
        on_accepted: Callable[[str, float], None] | None = None,
    ) -> None:
        self.write = write
        self.planned = planned
        self.rate = rate
        self.on_accepted = on_accepted
        self.counts = IssuerCounts()
        self.finished = threading.Event()

    def run(self, stop: threading.Event) -> None:
        started = time.monotonic()
        i = 0
        try:
            while i < len(self.planned) and not stop.is_set():
                due = (time.monotonic() - started) * self.rate if self.rate else float("inf")
                j = i
                while j < len(self.planned) and j - i < ISSUE_BATCH and self.planned[j].slot <= due:
                    j += 1
                if j == i:
                    time.sleep(min(0.005, max(0.0, (self.planned[i].slot - due) / self.rate)))
                    continue
                self._issue(self.planned[i:j])
                i = j
        finally:
            self.finished.set()

    def _issue(self, batch: Sequence[PlannedCommand]) -> None:
        c = self.counts
        commands = []
        for planned in batch:
            c.issued += 1
            try:
                commands.append(parse_command(planned.body))
            except CommandError as exc:
                c.malformed += 1
                c.count_reason(f"malformed: {exc}")
        results = self.write.handle_many(commands)
        now = time.time()
        for result in results:
            if result.replayed:
                c.replayed += 1
            elif result.accepted:
                c.accepted += 1
                if self.on_accepted is not None and result.event_id is not None:
                    self.on_accepted(result.event_id, now)
            else:
                c.rejected += 1
                c.count_reason(result.reason)
        c.payments_done = batch[-1].payment_index + 1


@dataclass
class ProjectionStatus:
    name: str
    lag: int | None
    applied: int


@dataclass
class AppStatus:
    outbox_events: int
    unsent: int
    projections: list[ProjectionStatus]

    def caught_up(self) -> bool:
        return self.unsent == 0 and all(p.lag == 0 for p in self.projections)


def read_status(layout: Layout, watermarks: WatermarkReader | None) -> AppStatus:
    """What a progress line, the API and the verifier show: outbox and lag per projection."""
    write = connect(layout.write_db, readonly=True)
    try:
        total, unsent = outbox_counts(write)
    finally:
        write.close()
    try:
        high = watermarks.high(timeout=2.0) if watermarks is not None else None
    except BrokerUnavailable:
        high = None
    out = []
    for projection in all_projections():
        path = layout.read_db(projection.name)
        if not path.exists():
            out.append(ProjectionStatus(projection.name, None, 0))
            continue
        read = connect(path, readonly=True)
        try:
            stored = stored_offsets(read)
            applied = read.execute("SELECT COUNT(*) FROM applied_events").fetchone()[0]
        except sqlite3.OperationalError:  # its runner has created the file, not the tables
            out.append(ProjectionStatus(projection.name, None, 0))
            continue
        finally:
            read.close()
        out.append(
            ProjectionStatus(
                projection.name, None if high is None else lag(stored, high), int(applied)
            )
        )
    return AppStatus(total, unsent, out)


class PaymentsApp:
    """The relay and the four projections against one broker.

    Threads by default. With `processes=True` each projection runs as its own
    `python -m payments.projection_runner` process (its log in the app dir): on a
    multi-core machine that takes the projections off this process's GIL. With
    `receipts=True` the exactly-once receipts stage runs too, always as its own
    supervised process (`receipts.log`), so that it can be killed and restarted alone.
    """

    def __init__(
        self,
        layout: Layout,
        bootstrap: str,
        *,
        relay: bool = True,
        processes: bool = False,
        receipts: bool = False,
    ) -> None:
        self.layout = layout.create()
        self.bootstrap = bootstrap
        self.processes = processes
        self.receipts = (
            ReceiptsProcess(bootstrap, layout.root / "receipts.log") if receipts else None
        )
        self.receipts_exit: int | None = None
        self.stop_event = threading.Event()
        self.relay = OutboxRelay(layout.write_db, bootstrap) if relay else None
        self.threads: list[threading.Thread] = []
        self.children: list[subprocess.Popen[bytes]] = []
        if self.relay is not None:
            self.threads.append(
                threading.Thread(
                    target=self.relay.run, args=(self.stop_event,), name="relay", daemon=True
                )
            )
        if processes:
            return
        for p in all_projections():
            runner = ProjectionRunner(p, layout.read_db(p.name), bootstrap)
            self.threads.append(
                threading.Thread(
                    target=runner.run,
                    args=(self.stop_event,),
                    name=f"projection-{p.name}",
                    daemon=True,
                )
            )

    def start(self) -> PaymentsApp:
        for thread in self.threads:
            thread.start()
        if self.receipts is not None:
            self.receipts.start()
        if self.processes:
            for p in all_projections():
                self.children.append(self._spawn(p.name))
        return self

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "tidelog.payments.projection_runner",
            "--projection",
            name,
            "--db",
            str(self.layout.read_db(name)),
            "--bootstrap",
            self.bootstrap,
        ]
        with open(self.layout.root / f"projection-{name}.log", "ab") as log_file:
            return subprocess.Popen(command, stdout=log_file, stderr=log_file)

    def stop(self) -> list[int]:
        """Stop everything; the exit codes of the projection processes (0: clean). The
        receipts stage's is `receipts_exit`."""
        self.stop_event.set()
        for child in self.children:
            child.send_signal(signal.SIGTERM)
        if self.receipts is not None:
            self.receipts_exit = self.receipts.stop()
        for thread in self.threads:
            thread.join(60)
        codes = []
        for child in self.children:
            try:
                codes.append(child.wait(60))
            except subprocess.TimeoutExpired:
                child.kill()
                codes.append(child.wait())
        return codes

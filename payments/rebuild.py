"""`tidelog payments rebuild PROJECTION`: replay from offset 0, prove equal to the live model.

Owns: the fresh read model (`DATA_DIR/rebuild/<projection>.db`, replaced on every run),
the replay and the comparison. Guarantees: the live model's offsets and content are read
in ONE SQLite read transaction (a consistent snapshot even while its projection runs);
the replay stops at exactly those offsets, so the two must be equal row for row and in
the set of applied event ids. Exit 0 only if they are.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tidelog.payments.app import Layout
from tidelog.payments.broker_process import BrokerProcess, BrokerStartError, free_port
from tidelog.payments.kafka_io import BrokerUnavailable
from tidelog.payments.projection_runner import ProjectionRunner, stored_offsets
from tidelog.payments.projections import Projection, by_name
from tidelog.payments.sqlite_db import connect
from tidelog.payments.verifier import ProjectionReport, compare

REPLAY_TIMEOUT_S = 600.0

Snapshot = dict[str, list[tuple[object, ...]]]


@dataclass
class RebuildResult:
    projection: str
    events: int
    seconds: float
    offsets: dict[int, int]
    report: ProjectionReport = field(default_factory=lambda: ProjectionReport("rebuild"))

    @property
    def ok(self) -> bool:
        return self.report.mismatches == 0


def snapshot(db: sqlite3.Connection, projection: Projection) -> tuple[dict[int, int], Snapshot]:
    db.execute("BEGIN")
    try:
        offsets = stored_offsets(db)
        tables = {c.table: db.execute(c.query()).fetchall() for c in projection.compared}
        tables["applied_events"] = db.execute("SELECT event_id FROM applied_events").fetchall()
    finally:
        db.execute("COMMIT")
    return offsets, tables


def rebuild(layout: Layout, name: str, bootstrap: str) -> RebuildResult:
    projection = by_name(name)
    live_path = layout.read_db(name)
    if not live_path.exists():
        raise FileNotFoundError(f"no live read model path={live_path}")
    live = connect(live_path, readonly=True)
    try:
        until, live_tables = snapshot(live, projection)
    finally:
        live.close()
    fresh_path = layout.root / "rebuild" / f"{name}.db"
    fresh_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{fresh_path}{suffix}").unlink(missing_ok=True)
    started = time.monotonic()
    runner = ProjectionRunner(projection, fresh_path, bootstrap, until=until)
    try:
        while not runner.done():
            if time.monotonic() - started > REPLAY_TIMEOUT_S:
                raise BrokerUnavailable(
                    f"replay did not reach the live offsets in {REPLAY_TIMEOUT_S}s"
                )
            runner.poll_once(0.2)
        seconds = time.monotonic() - started
        _, fresh_tables = snapshot(runner.db, projection)
    finally:
        runner.close()
    result = RebuildResult(name, sum(until.values()), seconds, until)
    keys = {c.table: len(c.key) for c in projection.compared} | {"applied_events": 1}
    for table, key_len in keys.items():
        compare(table, key_len, live_tables[table], fresh_tables[table], result.report)
    return result


def render(result: RebuildResult) -> str:
    r = result.report
    rate = result.events / result.seconds if result.seconds else 0.0
    lines = [
        f"  projection         {result.projection}",
        f"  replayed           offsets 0 -> {result.events} over {len(result.offsets)} partitions "
        f"in {result.seconds:.2f}s ({rate:,.0f} records/s)",
        f"  rows compared      {r.rows_checked}",
        f"  mismatches         {r.mismatches}",
    ]
    lines.extend(f"  ! {example}" for example in r.examples)
    lines.append(
        "PASS: the rebuilt read model equals the live one"
        if result.ok
        else "FAIL: the rebuilt read model differs from the live one"
    )
    return "\n".join(lines)


def run_rebuild_command(name: str, data_dir: Path, bootstrap: str | None) -> int:
    try:
        by_name(name)
    except KeyError as exc:
        print(f"tidelog payments rebuild: error: {exc.args[0]}", file=sys.stderr)
        return 2
    layout = Layout(data_dir)
    if not layout.read_db(name).exists():
        print(
            f"tidelog payments rebuild: error: no live read model path={layout.read_db(name)}",
            file=sys.stderr,
        )
        return 2
    broker = None
    try:
        if bootstrap is None:
            broker = BrokerProcess(layout.broker_dir, free_port()).start()
            bootstrap = broker.bootstrap
            print(f"started broker on {bootstrap} data={layout.broker_dir}")
        result = rebuild(layout, name, bootstrap)
    except (BrokerStartError, BrokerUnavailable) as exc:
        print(f"tidelog payments rebuild: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if broker is not None:
            broker.stop()
    print(render(result))
    return 0 if result.ok else 1

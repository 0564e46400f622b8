"""Runs one projection: consume `payments.events`, apply, store offsets with the result.

Owns: the read model's bookkeeping tables (`consumed_offsets`, `applied_events`,
`dead_letters`), the consumer (its own group, `payments-<projection>`), the batch loop
and dead-lettering. Guarantees:

- One SQLite transaction per polled batch holds the read-model changes AND the next
  offset of every partition in it, so a crash never applies an event twice or skips
  one: on (re)assignment the consumer seeks to the offsets stored in the read model,
  not to the group's committed offsets (those are committed too, afterwards, only so
  that `tidelog groups describe` shows the lag).
- An event id already in `applied_events` is skipped (the relay may publish twice).
- A record that is not a v1 event is produced to `payments.dlq` (value as-is, headers
  with the reason and where it came from), acknowledged, and only then is its offset
  stored: the projection continues past it and nothing is dropped silently.
- Replay mode (`until`): no group, starts at the stored offsets (0 for a fresh model)
  and stops when every partition reached `until` (used by rebuild).

Runs as a thread (`PaymentsApp`) or alone: `python -m payments.projection_runner
--projection NAME --db PATH --bootstrap HOST:PORT`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tidelog.payments import events as ev
from tidelog.payments.child_main import add_batch_messages, start_child
from tidelog.payments.kafka_io import (
    DLQ_TOPIC,
    EVENTS_PARTITIONS,
    EVENTS_TOPIC,
    consumer_config,
    producer_config,
)
from tidelog.payments.projections import Projection
from tidelog.payments.sqlite_db import connect, transaction

log = logging.getLogger("payments.projection")
BATCH_MESSAGES = 5_000
# consume() waits for a full batch or this long: short, or every event waits for it
POLL_TIMEOUT_S = 0.02

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS consumed_offsets (
    partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS applied_events (event_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (partition, offset)
);
"""


def open_read_model(path: Path, projection: Projection) -> sqlite3.Connection:
    db = connect(path)
    db.executescript(BOOKKEEPING + projection.schema)
    return db


def stored_offsets(db: sqlite3.Connection) -> dict[int, int]:
    return {
        int(p): int(o) for p, o in db.execute("SELECT partition, next_offset FROM consumed_offsets")
    }


def lag(stored: dict[int, int], high: dict[int, int]) -> int:
    return sum(max(0, end - stored.get(p, 0)) for p, end in high.items())


def group_id(projection_name: str) -> str:
    return f"payments-{projection_name}"


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        db_path: Path,
        bootstrap: str,
        *,
        until: dict[int, int] | None = None,
        batch_messages: int = BATCH_MESSAGES,
    ) -> None:
        from confluent_kafka import Consumer

        self.projection = projection
        self.db = open_read_model(db_path, projection)
        self.bootstrap = bootstrap
        self.until = until
        self.batch_messages = batch_messages
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._dlq: Any = None
        name = group_id(projection.name)
        if until is None:
            self.consumer = Consumer(consumer_config(bootstrap, name))
            self.consumer.subscribe([EVENTS_TOPIC], on_assign=self._on_assign)
        else:
            self.consumer = Consumer(consumer_config(bootstrap, f"{name}-replay"))
            self.consumer.assign(self._positions(range(EVENTS_PARTITIONS)))

    def _positions(self, partitions: Sequence[int] | range) -> list[Any]:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        stored = stored_offsets(self.db)
        return [
            TopicPartition(EVENTS_TOPIC, p, stored.get(p, OFFSET_BEGINNING)) for p in partitions
        ]

    def _on_assign(self, consumer: Any, assigned: list[Any]) -> None:
        positions = self._positions([tp.partition for tp in assigned])
        log.info(
            "projection assigned name=%s positions=%s",
            self.projection.name,
            {tp.partition: tp.offset for tp in positions},
        )
        consumer.assign(positions)

    def done(self) -> bool:
        """Replay mode: every partition reached its `until` offset."""
        if self.until is None:
            return False
        stored = stored_offsets(self.db)
        return all(stored.get(p, 0) >= end for p, end in self.until.items())

    def poll_once(self, timeout: float = 0.1) -> int:
        messages = self.consumer.consume(num_messages=self.batch_messages, timeout=timeout)
        batch = [m for m in messages if m.error() is None and self._wanted(m)]
        if not batch:
            return 0
        with transaction(self.db) as db:
            next_offsets: dict[int, int] = {}
            decoded: list[ev.Event] = []
            for msg in batch:
                partition, offset = msg.partition(), msg.offset()
                next_offsets[partition] = max(next_offsets.get(partition, 0), offset + 1)
                try:
                    decoded.append(ev.decode_event(msg.value()))
                except ev.PoisonEvent as exc:
                    self._dead_letter(db, msg, str(exc))
            applied = self._new_events(db, decoded)
            db.executemany(
                "INSERT INTO applied_events VALUES (?)", [(e.event_id,) for e in applied]
            )
            if self._dlq is not None and len(self._dlq) > 0:
                self._flush_dlq()
            db.executemany(
                "INSERT INTO consumed_offsets VALUES (?, ?) ON CONFLICT (partition)"
                " DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
                next_offsets.items(),
            )
            # last statement before the commit, so now_ms is (nearly) when it becomes visible
            self.projection.apply(db, applied, int(time.time() * 1000))
        self.applied += len(applied)
        if self.until is None:
            self._commit_to_group(next_offsets)
        return len(batch)

    def _new_events(self, db: sqlite3.Connection, events: list[ev.Event]) -> list[ev.Event]:
        """The events not applied before (by event id), each once, in batch order."""
        seen: set[str] = set()
        ids = [e.event_id for e in events]
        for i in range(0, len(ids), 500):  # SQLite's default limit on bound parameters
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(
                r[0]
                for r in db.execute(
                    f"SELECT event_id FROM applied_events WHERE event_id IN ({marks})", chunk
                )
            )
        out = []
        for e in events:
            if e.event_id in seen:
                self.duplicates += 1
                continue
            seen.add(e.event_id)
            out.append(e)
        return out

    def _wanted(self, msg: Any) -> bool:
        if self.until is None:
            return True
        return bool(msg.offset() < self.until.get(msg.partition(), 0))

    def _dead_letter(self, db: sqlite3.Connection, msg: Any, reason: str) -> None:
        from confluent_kafka import Producer

        if self._dlq is None:
            self._dlq = Producer(producer_config(self.bootstrap))
        headers = [
            ("reason", reason.encode()),
            ("projection", self.projection.name.encode()),
            ("source", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
        ]
        self._dlq.produce(DLQ_TOPIC, key=msg.key(), value=msg.value(), headers=headers)
        db.execute(
            "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?)",
            (msg.partition(), msg.offset(), reason),
        )
        self.dead_lettered += 1
        log.warning(
            "poison event dead-lettered projection=%s partition=%d offset=%d reason=%s",
            self.projection.name,
            msg.partition(),
            msg.offset(),
            reason,
        )

    def _flush_dlq(self) -> None:
        # the offset of a poison event is stored only once the dead letter is acknowledged
        if self._dlq.flush(60) > 0:
            raise RuntimeError("dead-letter topic did not acknowledge in 60s")

    def _commit_to_group(self, next_offsets: dict[int, int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(EVENTS_TOPIC, p, o) for p, o in next_offsets.items()]
        # courtesy only: the read model's own offsets are the ones that count
        with contextlib.suppress(KafkaException):
            self.consumer.commit(offsets=offsets, asynchronous=True)

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set() and not self.done():
                self.poll_once(POLL_TIMEOUT_S)
        finally:
            self.close()

    def close(self) -> None:
        self.consumer.close()
        if self._dlq is not None:
            self._dlq.flush(10)
        self.db.close()


def main(argv: Sequence[str] | None = None) -> int:
    """One projection as its own process (SIGTERM/SIGINT: finish the batch, exit 0)."""
    from tidelog.payments.projections import by_name

    parser = argparse.ArgumentParser(prog="python -m payments.projection_runner")
    parser.add_argument("--projection", required=True)
    parser.add_argument("--db", type=Path, required=True, help="the read model's file")
    parser.add_argument("--bootstrap", required=True)
    add_batch_messages(parser, BATCH_MESSAGES)
    args = parser.parse_args(argv)
    stop = start_child()
    runner = ProjectionRunner(
        by_name(args.projection), args.db, args.bootstrap, batch_messages=args.batch_messages
    )
    log.info("projection started name=%s db=%s", args.projection, args.db)
    runner.run(stop)
    log.info(
        "projection stopped name=%s applied=%d duplicates=%d dead_lettered=%d",
        args.projection,
        runner.applied,
        runner.duplicates,
        runner.dead_lettered,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The outbox relay: publishes the write model's outbox to `payments.events`.

Owns: reading unsent outbox rows in `seq` order, producing each with an idempotent
(acks=all) producer keyed by payment id, and marking a row sent only from its delivery
report. Guarantees: a row is marked sent only after the broker acknowledged it, so
killing the relay at any moment loses nothing — a restarted relay re-publishes every row
not marked sent. That can publish an event twice (acked, then killed before the mark);
every reader deduplicates by event id. A fatal producer error replaces the producer and
re-publishes everything unsent, for the same reason.

Run alone as `python -m payments.outbox_relay --db write.db --bootstrap HOST:PORT`
(SIGTERM/SIGINT: flush, mark, exit 0).
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tidelog.payments.child_main import start_child
from tidelog.payments.kafka_io import EVENTS_TOPIC, producer_config
from tidelog.payments.sqlite_db import connect, transaction

log = logging.getLogger("payments.relay")
BATCH_ROWS = 5_000


class OutboxRelay:
    def __init__(self, db_path: Path, bootstrap: str, batch_rows: int = BATCH_ROWS) -> None:
        # marks need no fsync of their own: a mark lost in a power cut only means that row
        # is published again, and readers deduplicate by event id. busy_ms=0: while the
        # write model holds the lock (its fsync), marking waits for the next round instead
        # of sleeping in SQLite's busy handler with nothing being published
        self.db = connect(db_path, busy_ms=0)
        self.bootstrap = bootstrap
        self.batch_rows = batch_rows
        self.cursor = 0  # highest seq handed to the current producer
        self.delivered: list[int] = []
        self.in_flight = 0
        self.published = 0  # delivery reports without error (re-sends included)
        self.errors = 0
        self._restart = False
        self.producer = self._new_producer()

    def _new_producer(self) -> Any:
        from confluent_kafka import Producer

        return Producer(producer_config(self.bootstrap, error_cb=self._on_error))

    def _on_error(self, err: Any) -> None:
        if err.fatal():
            log.warning("relay producer fatal error=%s; replacing it and re-publishing", err)
            self._restart = True

    def pump(self) -> int:
        """Hand the next unsent rows to the producer; mark what was acknowledged meanwhile."""
        if self._restart:
            self._replace_producer()
        rows = self.db.execute(
            "SELECT seq, payment_id, payload FROM outbox WHERE sent_at IS NULL AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (self.cursor, self.batch_rows),
        ).fetchall()
        for seq, payment_id, payload in rows:
            self._produce(seq, payment_id, payload)
            self.cursor = seq
        self.producer.poll(0.002 if rows else 0.005)
        self.mark_sent()
        return len(rows)

    def _produce(self, seq: int, payment_id: str, payload: bytes) -> None:
        def on_delivery(err: Any, _msg: Any) -> None:
            self.in_flight -= 1
            if err is None:
                self.delivered.append(seq)
                self.published += 1
            else:  # e.g. message timeout: publish again from the first unsent row
                self.errors += 1
                log.warning("relay delivery failed seq=%d error=%s", seq, err)
                self._restart = True

        while True:
            try:
                self.producer.produce(
                    EVENTS_TOPIC, key=payment_id.encode(), value=payload, on_delivery=on_delivery
                )
                self.in_flight += 1
                return
            except BufferError:
                self.producer.poll(0.01)
                self.mark_sent()

    def mark_sent(self, wait: bool = False) -> None:
        if not self.delivered:
            return
        done, self.delivered = self.delivered, []
        now = time.time()
        deadline = time.monotonic() + (30.0 if wait else 0.0)
        while True:
            try:
                with transaction(self.db) as db:
                    db.executemany(
                        "UPDATE outbox SET sent_at = ? WHERE seq = ?", ((now, s) for s in done)
                    )
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    self.delivered = done + self.delivered  # next round
                    return
                time.sleep(0.005)

    def _replace_producer(self) -> None:
        self._restart = False
        self.producer.flush(5)
        self.mark_sent()
        self.producer = self._new_producer()
        self.in_flight = 0
        self.cursor = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.pump()
        self.close()

    def close(self, timeout: float = 30.0) -> None:
        self.producer.flush(timeout)
        self.mark_sent(wait=True)
        self.db.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payments.outbox_relay")
    parser.add_argument("--db", type=Path, required=True, help="the write model's write.db")
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args(argv)
    stop = start_child()
    relay = OutboxRelay(args.db, args.bootstrap)
    log.info("relay started db=%s bootstrap=%s", args.db, args.bootstrap)
    relay.run(stop)
    log.info("relay stopped published=%d errors=%d", relay.published, relay.errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

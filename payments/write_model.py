"""The write side: payments (SQLite), idempotency keys and the transactional outbox.

Owns: the `write.db` schema and `WriteModel.handle_many`. Guarantees: for every command
in a batch, the payment's new state, its idempotency record and its outbox row (the
encoded event) are committed in ONE transaction, or nothing is. A retried command (same
idempotency key, same content) gets the first answer back and produces no new event; the
same key with different content is rejected. A rejected command writes no event.
The outbox is read by `outbox_relay`, which marks rows sent only after the broker acks.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tidelog.payments import events as ev
from tidelog.payments.sqlite_db import connect, transaction
from tidelog.payments.state_machine import Accepted, Command, PaymentState, decide

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    currency TEXT NOT NULL, status TEXT NOT NULL, authorized INTEGER NOT NULL,
    captured INTEGER NOT NULL, refunded INTEGER NOT NULL, charged_back INTEGER NOT NULL,
    released INTEGER NOT NULL, on_hold INTEGER NOT NULL, holds INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, accepted INTEGER NOT NULL,
    reason TEXT NOT NULL, event_id TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    payment_id TEXT NOT NULL, payload BLOB NOT NULL, accepted_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(seq) WHERE sent_at IS NULL;
"""

_STATE_COLUMNS = (
    "payment_id, merchant_id, customer_id, currency, status, authorized, captured, refunded, "
    "charged_back, released, on_hold, holds, version"
)


@dataclass(frozen=True)
class CommandResult:
    accepted: bool
    reason: str = ""
    event_id: str | None = None
    replayed: bool = False  # the answer to an earlier command with this idempotency key


def open_write_db(path: Path) -> sqlite3.Connection:
    db = connect(path, durable=True)
    db.executescript(SCHEMA)
    return db


def load_state(db: sqlite3.Connection, payment_id: str) -> PaymentState | None:
    row = db.execute(
        f"SELECT {_STATE_COLUMNS} FROM payments WHERE payment_id = ?", (payment_id,)
    ).fetchone()
    return None if row is None else state_from_row(row)


def state_from_row(row: tuple[object, ...]) -> PaymentState:
    values = list(row)
    values[10] = bool(values[10])
    return PaymentState(*values)  # type: ignore[arg-type]


class WriteModel:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.db = open_write_db(path)
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    def handle(self, command: Command) -> CommandResult:
        return self.handle_many([command])[0]

    def handle_many(self, commands: Iterable[Command]) -> list[CommandResult]:
        """Decide every command in one transaction (one fsync for the whole batch)."""
        with transaction(self.db) as db:
            now = self.clock()
            return [self._handle(db, cmd, now) for cmd in commands]

    def _handle(self, db: sqlite3.Connection, cmd: Command, now: float) -> CommandResult:
        seen = db.execute(
            "SELECT fingerprint, accepted, reason, event_id FROM idempotency WHERE key = ?",
            (cmd.idempotency_key,),
        ).fetchone()
        if seen is not None:
            if seen[0] != cmd.fingerprint():
                return CommandResult(
                    False,
                    f"idempotency key reused with a different command key={cmd.idempotency_key}",
                )
            return CommandResult(bool(seen[1]), seen[2], seen[3], replayed=True)
        decision = decide(load_state(db, cmd.payment_id), cmd)
        if not isinstance(decision, Accepted):
            result = CommandResult(False, decision.reason)
        else:
            result = CommandResult(True, "", self._apply(db, decision, now))
        db.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
            (
                cmd.idempotency_key,
                cmd.fingerprint(),
                result.accepted,
                result.reason,
                result.event_id,
            ),
        )
        return result

    def _apply(self, db: sqlite3.Connection, decision: Accepted, now: float) -> str:
        s = decision.state
        db.execute(
            f"INSERT OR REPLACE INTO payments ({_STATE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.payment_id,
                s.merchant_id,
                s.customer_id,
                s.currency,
                s.status,
                s.authorized,
                s.captured,
                s.refunded,
                s.charged_back,
                s.released,
                s.on_hold,
                s.holds,
                s.version,
            ),
        )
        event = ev.Event(
            event_id=uuid.uuid4().hex,
            type=decision.event_type,
            payment_id=s.payment_id,
            merchant_id=s.merchant_id,
            customer_id=s.customer_id,
            amount=decision.amount,
            currency=s.currency,
            occurred_at=int(now * 1000),
            version=s.version,
            status=s.status,
            on_hold=s.on_hold,
        )
        db.execute(
            "INSERT INTO outbox (event_id, payment_id, payload, accepted_at) VALUES (?, ?, ?, ?)",
            (event.event_id, s.payment_id, ev.encode_event(event), now),
        )
        return event.event_id


def outbox_counts(db: sqlite3.Connection) -> tuple[int, int]:
    """(events in the outbox, events not yet acknowledged by the broker)."""
    total = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    unsent = db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
    return int(total), int(unsent)

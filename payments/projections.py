"""The four read models and how each event changes them (SQL only; no Kafka, no clocks).

Owns: each projection's tables (`schema`), its `apply(db, event)` and the `compared`
queries that define its content for the verifier and for rebuild. Guarantees: `apply`
only adds deltas that commute (amounts, counts) or keeps the state of the highest
payment `version` seen (status, on-hold), so the result does not depend on the order of
events of one payment; the runner makes it run at most once per event id.

- payment_status: one row per payment (the customer-facing status) and its history.
- merchant: balances per merchant and currency, and a settlement report per UTC day.
- ledger: double-entry postings; every event posts balanced legs (debits == credits).
- risk: payments that were held or charged back, and per-merchant risk counters.

A batch is applied with few statements: per-key sums are added up in Python first and
written with one upsert per key (`executemany`), which is what lets four projections
keep up with thousands of events per second in one process.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tidelog.payments import events as ev

Key = tuple[str, ...]

AMOUNT_COLUMN = {
    ev.PAYMENT_AUTHORIZED: "authorized",
    ev.PAYMENT_CAPTURED: "captured",
    ev.REFUND_INITIATED: "refunded",
    ev.CHARGEBACK_OPENED: "charged_back",
    ev.PAYMENT_VOIDED: "voided",
}


@dataclass(frozen=True)
class Compared:
    """One table's content as compared: `SELECT columns FROM table ORDER BY key`."""

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]

    def query(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.table} ORDER BY {', '.join(self.key)}"


class Projection(Protocol):
    name: str
    schema: str
    compared: tuple[Compared, ...]

    def apply(self, db: sqlite3.Connection, events: Sequence[ev.Event], now_ms: int) -> None:
        """Apply a batch of new (not yet applied) events, inside the caller's transaction;
        `now_ms` is the wall clock just before that transaction commits."""
        ...


def _add(acc: dict[Key, list[int]], key: Key, slot: int, amount: int, width: int) -> None:
    row = acc.get(key)
    if row is None:
        row = acc[key] = [0] * width
    row[slot] += amount


def utc_day(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_ms // 1000))


# -- payment status ----------------------------------------------------------------------


@dataclass
class PaymentStatusProjection:
    name: str = "payment_status"
    schema: str = """
    CREATE TABLE IF NOT EXISTS payment_status (
        payment_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, customer_id TEXT NOT NULL,
        currency TEXT NOT NULL, status TEXT NOT NULL, on_hold INTEGER NOT NULL,
        authorized INTEGER NOT NULL DEFAULT 0, captured INTEGER NOT NULL DEFAULT 0,
        refunded INTEGER NOT NULL DEFAULT 0, charged_back INTEGER NOT NULL DEFAULT 0,
        voided INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL, updated_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS payment_history (
        payment_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL,
        type TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL,
        occurred_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
        PRIMARY KEY (payment_id, version)
    );
    CREATE INDEX IF NOT EXISTS payment_status_recent ON payment_status(updated_at);
    """
    compared: tuple[Compared, ...] = (
        Compared(
            "payment_status",
            ("payment_id",),
            (
                "payment_id",
                "merchant_id",
                "customer_id",
                "currency",
                "status",
                "on_hold",
                "authorized",
                "captured",
                "refunded",
                "charged_back",
                "version",
            ),
        ),
        Compared(
            "payment_history",
            ("payment_id", "version"),
            ("payment_id", "version", "type", "amount", "status"),
        ),
    )

    def apply(self, db: sqlite3.Connection, events: Sequence[ev.Event], now_ms: int) -> None:
        db.executemany(_STATUS_UPSERT, [_status_row(e) for e in events])
        db.executemany(
            "INSERT OR REPLACE INTO payment_history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.payment_id,
                    e.version,
                    e.event_id,
                    e.type,
                    e.amount,
                    e.status,
                    e.occurred_at,
                    now_ms,
                )
                for e in events
            ],
        )


_AMOUNTS = ("authorized", "captured", "refunded", "charged_back", "voided")
_STATUS_UPSERT = (
    "INSERT INTO payment_status (payment_id, merchant_id, customer_id, currency, status,"
    " on_hold, authorized, captured, refunded, charged_back, voided, version, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in _AMOUNTS)
    + ", status = CASE WHEN excluded.version > version THEN excluded.status ELSE status END,"
    " on_hold = CASE WHEN excluded.version > version THEN excluded.on_hold ELSE on_hold END,"
    " updated_at = CASE WHEN excluded.version > version THEN excluded.updated_at"
    " ELSE updated_at END, version = MAX(version, excluded.version)"
)


def _status_row(e: ev.Event) -> tuple[object, ...]:
    column = AMOUNT_COLUMN.get(e.type)
    amounts = [e.amount if c == column else 0 for c in _AMOUNTS]
    return (
        e.payment_id,
        e.merchant_id,
        e.customer_id,
        e.currency,
        e.status,
        e.on_hold,
        *amounts,
        e.version,
        e.occurred_at,
    )


# -- merchant balances and settlement ----------------------------------------------------


@dataclass
class MerchantProjection:
    name: str = "merchant"
    schema: str = """
    CREATE TABLE IF NOT EXISTS merchant_balances (
        merchant_id TEXT NOT NULL, currency TEXT NOT NULL, payments INTEGER NOT NULL DEFAULT 0,
        authorized INTEGER NOT NULL DEFAULT 0, captured INTEGER NOT NULL DEFAULT 0,
        refunded INTEGER NOT NULL DEFAULT 0, charged_back INTEGER NOT NULL DEFAULT 0,
        voided INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (merchant_id, currency)
    );
    CREATE TABLE IF NOT EXISTS settlement (
        merchant_id TEXT NOT NULL, currency TEXT NOT NULL, day TEXT NOT NULL,
        captured INTEGER NOT NULL DEFAULT 0, refunded INTEGER NOT NULL DEFAULT 0,
        charged_back INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (merchant_id, currency, day)
    );
    """
    compared: tuple[Compared, ...] = (
        Compared(
            "merchant_balances",
            ("merchant_id", "currency"),
            (
                "merchant_id",
                "currency",
                "payments",
                "authorized",
                "captured",
                "refunded",
                "charged_back",
                "voided",
            ),
        ),
        Compared(
            "settlement",
            ("merchant_id", "currency", "day"),
            ("merchant_id", "currency", "day", "captured", "refunded", "charged_back"),
        ),
    )

    def apply(self, db: sqlite3.Connection, events: Sequence[ev.Event], now_ms: int) -> None:
        balances: dict[Key, list[int]] = {}
        settlement: dict[Key, list[int]] = {}
        for e in events:
            column = AMOUNT_COLUMN.get(e.type)
            if column is None:
                continue
            key = (e.merchant_id, e.currency)
            _add(balances, key, 0, e.type == ev.PAYMENT_AUTHORIZED, 6)
            _add(balances, key, 1 + _AMOUNTS.index(column), e.amount, 6)
            if column in _SETTLED:
                day_key = (*key, utc_day(e.occurred_at))
                _add(settlement, day_key, _SETTLED.index(column), e.amount, 3)
        db.executemany(_MERCHANT_UPSERT, [(*k, *v) for k, v in balances.items()])
        db.executemany(_SETTLEMENT_UPSERT, [(*k, *v) for k, v in settlement.items()])


_SETTLED = ("captured", "refunded", "charged_back")
_MERCHANT_UPSERT = (
    "INSERT INTO merchant_balances VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (merchant_id, currency) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in ("payments", *_AMOUNTS))
)
_SETTLEMENT_UPSERT = (
    "INSERT INTO settlement VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (merchant_id, currency, day) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in _SETTLED)
)


# -- double-entry ledger -----------------------------------------------------------------


def postings(e: ev.Event) -> list[tuple[str, str, int]]:
    """(debit account, credit account, amount) pairs this event posts."""
    m = e.merchant_id
    if e.type == ev.PAYMENT_AUTHORIZED:
        return [("authorizations_open", f"merchant_auth_holds:{m}", e.amount)]
    if e.type == ev.PAYMENT_CAPTURED:
        return [
            (f"merchant_auth_holds:{m}", "authorizations_open", e.amount),
            ("scheme_receivable", f"merchant_payable:{m}", e.amount),
        ]
    if e.type == ev.PAYMENT_VOIDED:
        return [(f"merchant_auth_holds:{m}", "authorizations_open", e.amount)]
    if e.type == ev.REFUND_INITIATED:
        return [(f"merchant_payable:{m}", "scheme_receivable", e.amount)]
    if e.type == ev.CHARGEBACK_OPENED:
        return [(f"merchant_payable:{m}", "chargebacks_payable", e.amount)]
    return []


@dataclass
class LedgerProjection:
    name: str = "ledger"
    schema: str = """
    CREATE TABLE IF NOT EXISTS ledger_entries (
        event_id TEXT NOT NULL, leg INTEGER NOT NULL, account TEXT NOT NULL,
        currency TEXT NOT NULL, debit INTEGER NOT NULL, credit INTEGER NOT NULL,
        PRIMARY KEY (event_id, leg)
    );
    CREATE TABLE IF NOT EXISTS ledger_balances (
        account TEXT NOT NULL, currency TEXT NOT NULL, debits INTEGER NOT NULL DEFAULT 0,
        credits INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (account, currency)
    );
    """
    compared: tuple[Compared, ...] = (
        Compared(
            "ledger_balances", ("account", "currency"), ("account", "currency", "debits", "credits")
        ),
    )

    def apply(self, db: sqlite3.Connection, events: Sequence[ev.Event], now_ms: int) -> None:
        entries: list[tuple[object, ...]] = []
        balances: dict[Key, list[int]] = {}
        for e in events:
            leg = 0
            for debit, credit, amount in postings(e):
                entries.append((e.event_id, leg, debit, e.currency, amount, 0))
                entries.append((e.event_id, leg + 1, credit, e.currency, 0, amount))
                _add(balances, (debit, e.currency), 0, amount, 2)
                _add(balances, (credit, e.currency), 1, amount, 2)
                leg += 2
        db.executemany("INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?)", entries)
        db.executemany(
            "INSERT INTO ledger_balances VALUES (?, ?, ?, ?) ON CONFLICT (account, currency)"
            " DO UPDATE SET debits = debits + excluded.debits,"
            " credits = credits + excluded.credits",
            [(*k, *v) for k, v in balances.items()],
        )


# -- fraud / risk ------------------------------------------------------------------------


@dataclass
class RiskProjection:
    name: str = "risk"
    schema: str = """
    CREATE TABLE IF NOT EXISTS risk_payments (
        payment_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, on_hold INTEGER NOT NULL,
        holds INTEGER NOT NULL DEFAULT 0, chargebacks INTEGER NOT NULL DEFAULT 0,
        charged_back INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS risk_merchants (
        merchant_id TEXT NOT NULL, currency TEXT NOT NULL, payments INTEGER NOT NULL DEFAULT 0,
        holds INTEGER NOT NULL DEFAULT 0, chargebacks INTEGER NOT NULL DEFAULT 0,
        charged_back INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (merchant_id, currency)
    );
    """
    compared: tuple[Compared, ...] = (
        Compared(
            "risk_payments",
            ("payment_id",),
            ("payment_id", "merchant_id", "on_hold", "holds", "chargebacks", "charged_back"),
        ),
        Compared(
            "risk_merchants",
            ("merchant_id", "currency"),
            ("merchant_id", "currency", "payments", "holds", "chargebacks", "charged_back"),
        ),
    )
    _risky: frozenset[str] = field(
        default=frozenset({ev.FRAUD_HOLD_PLACED, ev.FRAUD_HOLD_RELEASED, ev.CHARGEBACK_OPENED})
    )

    def apply(self, db: sqlite3.Connection, events: Sequence[ev.Event], now_ms: int) -> None:
        merchants: dict[Key, list[int]] = {}
        risky: list[tuple[object, ...]] = []
        for e in events:
            held = int(e.type == ev.FRAUD_HOLD_PLACED)
            charged = int(e.type == ev.CHARGEBACK_OPENED)
            key = (e.merchant_id, e.currency)
            _add(merchants, key, 0, e.type == ev.PAYMENT_AUTHORIZED, 4)
            _add(merchants, key, 1, held, 4)
            _add(merchants, key, 2, charged, 4)
            _add(merchants, key, 3, e.amount * charged, 4)
            # on_hold changes only through hold/release, so only those (and chargebacks)
            # touch risk_payments, with the highest such version winning
            if e.type in self._risky:
                risky.append(
                    (
                        e.payment_id,
                        e.merchant_id,
                        e.on_hold,
                        held,
                        charged,
                        e.amount * charged,
                        e.version,
                    )
                )
        db.executemany(
            "INSERT INTO risk_merchants VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (merchant_id, currency) DO UPDATE SET payments = payments +"
            " excluded.payments, holds = holds + excluded.holds, chargebacks = chargebacks +"
            " excluded.chargebacks, charged_back = charged_back + excluded.charged_back",
            [(*k, *v) for k, v in merchants.items()],
        )
        db.executemany(
            "INSERT INTO risk_payments VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id)"
            " DO UPDATE SET holds = holds + excluded.holds,"
            " chargebacks = chargebacks + excluded.chargebacks,"
            " charged_back = charged_back + excluded.charged_back,"
            " on_hold = CASE WHEN excluded.version > version THEN excluded.on_hold"
            " ELSE on_hold END, version = MAX(version, excluded.version)",
            risky,
        )


def all_projections() -> list[Projection]:
    return [PaymentStatusProjection(), MerchantProjection(), LedgerProjection(), RiskProjection()]


def by_name(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    names = ", ".join(p.name for p in all_projections())
    raise KeyError(f"unknown projection name={name!r} expected one of: {names}")

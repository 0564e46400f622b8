"""Projections applied straight from the outbox (no broker) and checked by the verifier.

These pin the verifier's power: a clean model passes, and each kind of damage — a changed
row, a missing event, an unbalanced ledger, a lagging projection — is counted.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tidelog.payments import events as ev
from tidelog.payments.app import CommandIssuer, Layout
from tidelog.payments.projection_runner import open_read_model
from tidelog.payments.projections import PaymentStatusProjection, all_projections, postings
from tidelog.payments.sqlite_db import transaction
from tidelog.payments.verifier import verify_all
from tidelog.payments.workload import make_workload
from tidelog.payments.write_model import WriteModel


def build(tmp_path: Path, payments: int = 300, skip: int = 0) -> Layout:
    """Issue a seeded workload, then apply the outbox to every projection (minus `skip`)."""
    import threading

    layout = Layout(tmp_path).create()
    model = WriteModel(layout.write_db)
    CommandIssuer(model, make_workload(payments, 7, seed=3), rate=0).run(threading.Event())
    events = [ev.decode_event(p) for (p,) in model.db.execute("SELECT payload FROM outbox")]
    model.close()
    for projection in all_projections():
        db = open_read_model(layout.read_db(projection.name), projection)
        with transaction(db):
            for event in events[skip:] + events[:1]:  # the first one twice: a duplicate
                if db.execute(
                    "INSERT OR IGNORE INTO applied_events VALUES (?)", (event.event_id,)
                ).rowcount:
                    projection.apply(db, [event], 0)
            db.execute("INSERT INTO consumed_offsets VALUES (0, ?)", (len(events),))
        db.close()
    return layout


def test_a_clean_build_verifies(tmp_path: Path) -> None:
    layout = build(tmp_path)
    reports = verify_all(layout.write_db, layout.read_dir, {0: 0})
    assert [(r.name, r.mismatches, r.lag) for r in reports] == [
        (p.name, 0, 0) for p in all_projections()
    ]
    assert all(r.rows_checked > 300 for r in reports)


def test_every_projection_notices_a_missing_event(tmp_path: Path) -> None:
    layout = build(tmp_path, skip=2)  # events 0 and 1 (authorize, then capture of pay 0)
    reports = verify_all(layout.write_db, layout.read_dir, {0: 0})
    assert all(r.mismatches >= 1 for r in reports), reports


@pytest.mark.parametrize(
    ("projection", "damage"),
    [
        ("payment_status", "UPDATE payment_status SET status = 'approved' WHERE rowid = 3"),
        ("payment_status", "DELETE FROM payment_history WHERE rowid = 5"),
        ("merchant", "UPDATE merchant_balances SET refunded = refunded + 1 WHERE rowid = 1"),
        ("merchant", "UPDATE settlement SET captured = captured - 1 WHERE rowid = 1"),
        ("ledger", "UPDATE ledger_entries SET debit = debit + 1 WHERE rowid = 1"),
        ("ledger", "UPDATE ledger_balances SET credits = credits + 1 WHERE rowid = 2"),
        ("risk", "UPDATE risk_merchants SET holds = holds + 1 WHERE rowid = 1"),
    ],
)
def test_damage_to_a_read_model_is_a_mismatch(tmp_path: Path, projection: str, damage: str) -> None:
    layout = build(tmp_path)
    db = sqlite3.connect(layout.read_db(projection))
    assert db.execute(damage).rowcount == 1
    db.commit()
    db.close()
    report = {r.name: r for r in verify_all(layout.write_db, layout.read_dir, {0: 0})}
    assert report[projection].mismatches >= 1 and not report[projection].ok
    assert all(r.ok for name, r in report.items() if name != projection)


def test_lag_fails_the_verdict(tmp_path: Path) -> None:
    layout = build(tmp_path)
    reports = verify_all(layout.write_db, layout.read_dir, {0: 10**9})
    assert all(r.lag > 0 and not r.ok for r in reports)


def test_every_event_posts_balanced_legs() -> None:
    for kind in ev.EVENT_TYPES:
        event = ev.Event("e", kind, "p", "m", "c", 70, "EUR", 0, 1, "authorized", False)
        legs = postings(event)
        assert all(amount == 70 for _, _, amount in legs)
        assert all(debit != credit for debit, credit, _ in legs)


def test_status_keeps_the_highest_version_whatever_the_order() -> None:
    projection = PaymentStatusProjection()
    db = sqlite3.connect(":memory:")
    db.executescript(projection.schema)

    def event(event_id: str, kind: str, version: int, status: str, on_hold: bool) -> ev.Event:
        return ev.Event(event_id, kind, "p", "m", "c", 100, "EUR", 0, version, status, on_hold)

    later = event("e3", ev.PAYMENT_CAPTURED, 3, "captured", False)
    earlier = event("e2", ev.FRAUD_HOLD_PLACED, 2, "authorized", True)
    first = event("e1", ev.PAYMENT_AUTHORIZED, 1, "authorized", False)
    projection.apply(db, [later], 0)
    projection.apply(db, [first, earlier], 0)  # a batch, itself out of order
    row = db.execute("SELECT status, on_hold, authorized, captured, version FROM payment_status")
    assert row.fetchone() == ("captured", 0, 100, 100, 3)

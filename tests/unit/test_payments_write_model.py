"""The write model: state, idempotency record and outbox row commit together, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidelog.payments import events as ev
from tidelog.payments.state_machine import Command
from tidelog.payments.write_model import WriteModel, outbox_counts


def auth(key: str = "k1", pid: str = "p1", amount: int = 1000) -> Command:
    return Command("authorize", key, pid, "m1", "c1", amount, "EUR")


def outbox(model: WriteModel) -> list[ev.Event]:
    rows = model.db.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    return [ev.decode_event(p) for (p,) in rows]


def test_accepted_command_writes_state_and_one_outbox_event(tmp_path: Path) -> None:
    model = WriteModel(tmp_path / "write.db", clock=lambda: 1_700_000_000.5)
    result = model.handle(auth())
    assert result.accepted and result.event_id
    [event] = outbox(model)
    assert (event.event_id, event.type, event.amount, event.occurred_at, event.version) == (
        result.event_id,
        ev.PAYMENT_AUTHORIZED,
        1000,
        1_700_000_000_500,
        1,
    )
    assert outbox_counts(model.db) == (1, 1)


def test_rejected_command_writes_no_event(tmp_path: Path) -> None:
    model = WriteModel(tmp_path / "write.db")
    model.handle(auth())
    model.handle(Command("void", "k2", "p1"))
    result = model.handle(Command("capture", "k3", "p1"))
    assert not result.accepted and result.reason == "cannot capture a payment in status=voided"
    assert [e.type for e in outbox(model)] == [ev.PAYMENT_AUTHORIZED, ev.PAYMENT_VOIDED]
    unknown = model.handle(Command("refund", "k4", "ghost"))
    assert unknown.reason == "unknown payment payment_id=ghost"
    assert len(outbox(model)) == 2


def test_a_retried_command_is_accepted_once(tmp_path: Path) -> None:
    model = WriteModel(tmp_path / "write.db")
    model.handle(auth())
    first = model.handle(Command("capture", "cap-1", "p1", amount=400))
    again = model.handle_many([Command("capture", "cap-1", "p1", amount=400)] * 2)
    assert first.accepted and not first.replayed
    assert [(r.accepted, r.event_id, r.replayed) for r in again] == [
        (True, first.event_id, True)
    ] * 2
    assert len(outbox(model)) == 2
    assert model.db.execute("SELECT captured FROM payments").fetchone() == (400,)


def test_a_retried_rejection_stays_rejected_and_a_reused_key_is_refused(tmp_path: Path) -> None:
    model = WriteModel(tmp_path / "write.db")
    model.handle(auth())
    too_much = Command("capture", "cap-1", "p1", amount=5000)
    assert not model.handle(too_much).accepted
    assert model.handle(too_much).replayed
    other = model.handle(Command("capture", "cap-1", "p1", amount=10))
    assert not other.accepted and "idempotency key reused" in other.reason
    assert len(outbox(model)) == 1


def test_a_failure_mid_batch_commits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = WriteModel(tmp_path / "write.db")
    calls = []

    def failing_encode(event: ev.Event) -> bytes:
        calls.append(event)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return ev.encode_event(event)

    monkeypatch.setattr(ev, "encode_event", failing_encode)
    with pytest.raises(RuntimeError):
        model.handle_many([auth("a", "p1"), auth("b", "p2")])
    for table in ("payments", "idempotency", "outbox"):
        assert model.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)

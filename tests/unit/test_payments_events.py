"""The v1 event schema: round trip, and every kind of poison the decoder must refuse."""

from __future__ import annotations

import json

import pytest

from tidelog.payments import events as ev


def sample() -> ev.Event:
    return ev.Event(
        "e1",
        ev.PAYMENT_CAPTURED,
        "p1",
        "m1",
        "c1",
        250,
        "EUR",
        1_700_000_000_000,
        2,
        "partially_captured",
        False,
    )


def test_encode_decode_round_trip() -> None:
    event = sample()
    assert ev.decode_event(ev.encode_event(event)) == event
    assert json.loads(ev.encode_event(event))["schema_version"] == 1


def _with(**changes: object) -> bytes:
    raw = json.loads(ev.encode_event(sample()))
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty value"),
        (b"\xff\xfe not json", "not json"),
        (b"[1, 2]", "not a json object"),
        (_with(schema_version=2), "unknown schema_version"),
        (_with(amount="250"), "bad field field=amount"),
        (_with(amount=True), "bad field field=amount"),
        (_with(on_hold=1), "bad field field=on_hold"),
        (_with(type="PaymentStolen"), "unknown event type"),
        (_with(amount=-1), "negative amount"),
    ],
)
def test_poison_is_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(ev.PoisonEvent, match=reason):
        ev.decode_event(value)


def test_a_missing_field_is_poison() -> None:
    raw = json.loads(ev.encode_event(sample()))
    del raw["merchant_id"]
    with pytest.raises(ev.PoisonEvent, match="field=merchant_id"):
        ev.decode_event(json.dumps(raw).encode())

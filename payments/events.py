"""The payment event schema, version 1: what goes on the `payments.events` topic.

Owns: the event types, the `Event` record, its JSON encoding and the strict decoder.
Guarantees: `decode_event(encode_event(e)) == e`; a value that is not a well-formed v1
event raises `PoisonEvent` with a reason (a projection dead-letters it and moves on).
Amounts are integers in minor units; `occurred_at` is epoch milliseconds (UTC).
The format is documented in docs/payments-events.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

SCHEMA_VERSION: Final = 1

PAYMENT_AUTHORIZED: Final = "PaymentAuthorized"
PAYMENT_CAPTURED: Final = "PaymentCaptured"
PAYMENT_VOIDED: Final = "PaymentVoided"
REFUND_INITIATED: Final = "RefundInitiated"
CHARGEBACK_OPENED: Final = "ChargebackOpened"
FRAUD_HOLD_PLACED: Final = "FraudHoldPlaced"
FRAUD_HOLD_RELEASED: Final = "FraudHoldReleased"

EVENT_TYPES: Final = frozenset(
    {
        PAYMENT_AUTHORIZED,
        PAYMENT_CAPTURED,
        PAYMENT_VOIDED,
        REFUND_INITIATED,
        CHARGEBACK_OPENED,
        FRAUD_HOLD_PLACED,
        FRAUD_HOLD_RELEASED,
    }
)


class PoisonEvent(ValueError):
    """A record on the events topic that is not a well-formed v1 event."""


@dataclass(frozen=True)
class Event:
    """One fact about one payment.

    `version` counts the payment's events from 1; `status` and `on_hold` are the
    payment's state *after* this event, so a reader that sees events of one payment out
    of order can keep the state of the highest version.
    """

    event_id: str
    type: str
    payment_id: str
    merchant_id: str
    customer_id: str
    amount: int
    currency: str
    occurred_at: int
    version: int
    status: str
    on_hold: bool
    schema_version: int = SCHEMA_VERSION


_FIELDS: Final[dict[str, type]] = {
    "event_id": str,
    "type": str,
    "payment_id": str,
    "merchant_id": str,
    "customer_id": str,
    "amount": int,
    "currency": str,
    "occurred_at": int,
    "version": int,
    "status": str,
    "on_hold": bool,
    "schema_version": int,
}


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode_event(e: Event) -> bytes:
    # by hand, not dataclasses.asdict: asdict deep-copies every field and was a third of
    # the write side's CPU time
    return _ENCODER.encode(
        {
            "event_id": e.event_id,
            "type": e.type,
            "payment_id": e.payment_id,
            "merchant_id": e.merchant_id,
            "customer_id": e.customer_id,
            "amount": e.amount,
            "currency": e.currency,
            "occurred_at": e.occurred_at,
            "version": e.version,
            "status": e.status,
            "on_hold": e.on_hold,
            "schema_version": e.schema_version,
        }
    ).encode()


def decode_event(value: bytes | None) -> Event:
    if value is None:
        raise PoisonEvent("empty value")
    try:
        raw: Any = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PoisonEvent(f"not json error={exc}") from None
    if not isinstance(raw, dict):
        raise PoisonEvent("not a json object")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise PoisonEvent(f"unknown schema_version value={raw.get('schema_version')!r}")
    for name, kind in _FIELDS.items():
        got = raw.get(name)
        # bool is a subclass of int: an int field must not accept true/false
        if not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
            raise PoisonEvent(f"bad field field={name} value={got!r}")
    if raw["type"] not in EVENT_TYPES:
        raise PoisonEvent(f"unknown event type type={raw['type']!r}")
    if raw["amount"] < 0 or raw["version"] < 1:
        raise PoisonEvent(f"negative amount or version event_id={raw['event_id']}")
    return Event(**{name: raw[name] for name in _FIELDS})

"""Payment commands and the state machine that accepts or rejects them (no I/O).

Owns: the `Command` record, `parse_command` (a JSON-ish dict from a client -> Command,
or `CommandError` with a clear message), the `PaymentState` record and `decide`.
Guarantees: `decide` is pure. It accepts a command only when the payment's state allows
it — no capture after a void, no capture or refund while on fraud hold, captures never
exceed the authorization, refunds plus chargebacks never exceed captures — and then
returns the new state and the one event (type, amount) the command produces; otherwise
it returns a `Rejection` with a reason and no event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Final

from tidelog.payments import events as ev

AUTHORIZE: Final = "authorize"
CAPTURE: Final = "capture"
VOID: Final = "void"
REFUND: Final = "refund"
CHARGEBACK: Final = "chargeback"
FRAUD_HOLD: Final = "fraud_hold"
FRAUD_RELEASE: Final = "fraud_release"
COMMAND_KINDS: Final = (AUTHORIZE, CAPTURE, VOID, REFUND, CHARGEBACK, FRAUD_HOLD, FRAUD_RELEASE)

# statuses of a payment
AUTHORIZED: Final = "authorized"
PARTIALLY_CAPTURED: Final = "partially_captured"
CAPTURED: Final = "captured"
VOIDED: Final = "voided"
PARTIALLY_REFUNDED: Final = "partially_refunded"
REFUNDED: Final = "refunded"
CHARGED_BACK: Final = "charged_back"

MAX_AMOUNT: Final = 10**12
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class CommandError(ValueError):
    """A malformed command: a missing or ill-typed field. Never reaches the state machine."""


@dataclass(frozen=True)
class Command:
    kind: str
    idempotency_key: str
    payment_id: str
    merchant_id: str = ""
    customer_id: str = ""
    amount: int | None = None
    currency: str = ""

    def fingerprint(self) -> str:
        """What must match for a retry with the same idempotency key to count as the same."""
        return (
            f"{self.kind}|{self.payment_id}|{self.merchant_id}|{self.customer_id}|"
            f"{self.amount}|{self.currency}"
        )


@dataclass(frozen=True)
class PaymentState:
    payment_id: str
    merchant_id: str
    customer_id: str
    currency: str
    status: str
    authorized: int
    captured: int = 0
    refunded: int = 0
    charged_back: int = 0
    released: int = 0
    on_hold: bool = False
    holds: int = 0
    version: int = 0


@dataclass(frozen=True)
class Accepted:
    state: PaymentState
    event_type: str
    amount: int


@dataclass(frozen=True)
class Rejection:
    reason: str


Decision = Accepted | Rejection


def parse_command(raw: Any) -> Command:
    """A client's command (a dict, e.g. from JSON) -> Command, or CommandError."""
    if not isinstance(raw, dict):
        raise CommandError("command must be a json object")
    kind = raw.get("kind")
    if kind not in COMMAND_KINDS:
        raise CommandError(f"unknown command kind={kind!r} expected one of {COMMAND_KINDS}")
    key = _text(raw, "idempotency_key")
    payment_id = _text(raw, "payment_id")
    amount = raw.get("amount")
    if amount is not None and (
        not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT
    ):
        raise CommandError(f"amount must be a positive integer in minor units amount={amount!r}")
    if kind != AUTHORIZE:
        return Command(kind, key, payment_id, amount=amount)
    if amount is None:
        raise CommandError("authorize needs an amount")
    currency = raw.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise CommandError(f"currency must be three capital letters currency={currency!r}")
    return Command(
        kind,
        key,
        payment_id,
        merchant_id=_text(raw, "merchant_id"),
        customer_id=_text(raw, "customer_id"),
        amount=amount,
        currency=currency,
    )


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not _ID.match(value):
        raise CommandError(f"{name} must be 1-64 characters of [A-Za-z0-9_.:-] {name}={value!r}")
    return value


def decide(state: PaymentState | None, cmd: Command) -> Decision:
    if cmd.kind == AUTHORIZE:
        if state is not None:
            return Rejection(f"payment already exists payment_id={cmd.payment_id}")
        assert cmd.amount is not None
        new = PaymentState(
            cmd.payment_id, cmd.merchant_id, cmd.customer_id, cmd.currency, AUTHORIZED, cmd.amount
        )
        return _accept(new, ev.PAYMENT_AUTHORIZED, cmd.amount)
    if state is None:
        return Rejection(f"unknown payment payment_id={cmd.payment_id}")
    handler = _HANDLERS[cmd.kind]
    return handler(state, cmd.amount)


def _accept(state: PaymentState, event_type: str, amount: int) -> Accepted:
    return Accepted(replace(state, version=state.version + 1), event_type, amount)


def _capture(s: PaymentState, amount: int | None) -> Decision:
    if s.status not in (AUTHORIZED, PARTIALLY_CAPTURED):
        return Rejection(f"cannot capture a payment in status={s.status}")
    if s.on_hold:
        return Rejection("cannot capture a payment on fraud hold")
    open_amount = s.authorized - s.captured
    amount = open_amount if amount is None else amount
    if amount > open_amount:
        return Rejection(
            f"capture exceeds the open authorization amount={amount} open={open_amount}"
        )
    captured = s.captured + amount
    status = CAPTURED if captured == s.authorized else PARTIALLY_CAPTURED
    return _accept(replace(s, captured=captured, status=status), ev.PAYMENT_CAPTURED, amount)


def _void(s: PaymentState, amount: int | None) -> Decision:
    if s.status != AUTHORIZED:
        return Rejection(f"cannot void a payment in status={s.status}")
    if amount is not None:
        return Rejection("void takes no amount: it releases the whole authorization")
    if s.on_hold:
        return Rejection("cannot void a payment on fraud hold")
    return _accept(
        replace(s, released=s.authorized, status=VOIDED), ev.PAYMENT_VOIDED, s.authorized
    )


def _refund(s: PaymentState, amount: int | None) -> Decision:
    if s.status == CHARGED_BACK:
        return Rejection("cannot refund a charged-back payment")
    if s.on_hold:
        return Rejection("cannot refund a payment on fraud hold")
    refundable = s.captured - s.refunded - s.charged_back
    if refundable <= 0:
        return Rejection(f"nothing to refund status={s.status} captured={s.captured}")
    amount = refundable if amount is None else amount
    if amount > refundable:
        return Rejection(f"refunds would exceed captures amount={amount} refundable={refundable}")
    refunded = s.refunded + amount
    status = REFUNDED if refunded == s.captured else PARTIALLY_REFUNDED
    return _accept(replace(s, refunded=refunded, status=status), ev.REFUND_INITIATED, amount)


def _chargeback(s: PaymentState, amount: int | None) -> Decision:
    if s.status == CHARGED_BACK:
        return Rejection("a chargeback is already open")
    disputable = s.captured - s.refunded
    if disputable <= 0:
        return Rejection(f"nothing captured to dispute status={s.status}")
    amount = disputable if amount is None else amount
    if amount > disputable:
        return Rejection(f"chargeback exceeds captured funds amount={amount} open={disputable}")
    new = replace(s, charged_back=s.charged_back + amount, status=CHARGED_BACK)
    return _accept(new, ev.CHARGEBACK_OPENED, amount)


def _fraud_hold(s: PaymentState, amount: int | None) -> Decision:
    if s.on_hold:
        return Rejection("payment is already on fraud hold")
    if s.status in (VOIDED, CHARGED_BACK, REFUNDED):
        return Rejection(f"cannot hold a payment in status={s.status}")
    if amount is not None:
        return Rejection("fraud hold takes no amount")
    new = replace(s, on_hold=True, holds=s.holds + 1)
    return _accept(new, ev.FRAUD_HOLD_PLACED, s.authorized)


def _fraud_release(s: PaymentState, amount: int | None) -> Decision:
    if not s.on_hold:
        return Rejection("payment is not on fraud hold")
    if amount is not None:
        return Rejection("fraud release takes no amount")
    return _accept(replace(s, on_hold=False), ev.FRAUD_HOLD_RELEASED, s.authorized)


_HANDLERS = {
    CAPTURE: _capture,
    VOID: _void,
    REFUND: _refund,
    CHARGEBACK: _chargeback,
    FRAUD_HOLD: _fraud_hold,
    FRAUD_RELEASE: _fraud_release,
}

"""The payment state machine and command parsing: what is accepted, what is rejected, why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog.payments import events as ev
from tidelog.payments.state_machine import (
    Accepted,
    Command,
    CommandError,
    PaymentState,
    Rejection,
    decide,
    parse_command,
)


def run(*commands: tuple[str, int | None]) -> tuple[PaymentState, list[Rejection | Accepted]]:
    state = None
    decisions: list[Rejection | Accepted] = []
    auth = Command("authorize", "k0", "p1", "m1", "c1", 1000, "EUR")
    for i, (kind, amount) in enumerate([("authorize", 1000), *commands]):
        cmd = (
            auth if kind == "authorize" and i == 0 else Command(kind, f"k{i}", "p1", amount=amount)
        )
        decision = decide(state, cmd)
        decisions.append(decision)
        if isinstance(decision, Accepted):
            state = decision.state
    assert state is not None
    return state, decisions


def reasons(decisions: list[Rejection | Accepted]) -> list[str]:
    return [d.reason for d in decisions if isinstance(d, Rejection)]


def test_capture_after_void_is_rejected() -> None:
    state, decisions = run(("void", None), ("capture", None))
    assert state.status == "voided" and state.captured == 0
    assert reasons(decisions) == ["cannot capture a payment in status=voided"]


def test_partial_captures_add_up_and_cannot_exceed_the_authorization() -> None:
    state, decisions = run(("capture", 300), ("capture", 800), ("capture", 700))
    assert reasons(decisions) == ["capture exceeds the open authorization amount=800 open=700"]
    assert (state.captured, state.status) == (1000, "captured")
    assert [d.event_type for d in decisions if isinstance(d, Accepted)] == [
        ev.PAYMENT_AUTHORIZED,
        ev.PAYMENT_CAPTURED,
        ev.PAYMENT_CAPTURED,
    ]


def test_refunds_never_exceed_captures() -> None:
    state, decisions = run(("capture", 600), ("refund", 400), ("refund", 201), ("refund", None))
    assert reasons(decisions) == ["refunds would exceed captures amount=201 refundable=200"]
    assert (state.refunded, state.status) == (600, "refunded")
    _, more = run(("capture", 600), ("refund", None), ("refund", 1))
    assert reasons(more) == ["nothing to refund status=refunded captured=600"]


def test_refund_before_capture_and_void_after_capture_are_rejected() -> None:
    _, decisions = run(("refund", 10), ("capture", 10), ("void", None))
    assert reasons(decisions) == [
        "nothing to refund status=authorized captured=0",
        "cannot void a payment in status=partially_captured",
    ]


def test_fraud_hold_blocks_capture_until_released() -> None:
    state, decisions = run(
        ("fraud_hold", None),
        ("capture", None),
        ("fraud_hold", None),
        ("fraud_release", None),
        ("capture", None),
        ("fraud_release", None),
    )
    assert reasons(decisions) == [
        "cannot capture a payment on fraud hold",
        "payment is already on fraud hold",
        "payment is not on fraud hold",
    ]
    assert (state.status, state.on_hold, state.holds, state.version) == ("captured", False, 1, 4)


def test_chargeback_counts_against_refunds_and_happens_once() -> None:
    state, decisions = run(
        ("capture", None),
        ("refund", 300),
        ("chargeback", None),
        ("chargeback", None),
        ("refund", 1),
    )
    assert (state.charged_back, state.status) == (700, "charged_back")
    assert reasons(decisions) == [
        "a chargeback is already open",
        "cannot refund a charged-back payment",
    ]


def test_unknown_payment_and_second_authorize_are_rejected() -> None:
    assert decide(None, Command("capture", "k", "nope")) == Rejection(
        "unknown payment payment_id=nope"
    )
    state, _ = run()
    again = decide(state, Command("authorize", "k9", "p1", "m1", "c1", 5, "EUR"))
    assert again == Rejection("payment already exists payment_id=p1")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "command must be a json object"),
        ({"kind": "steal"}, "unknown command kind='steal'"),
        ({"kind": "capture", "payment_id": "p"}, "idempotency_key must be"),
        ({"kind": "capture", "idempotency_key": "k", "payment_id": "a b"}, "payment_id must be"),
        (
            {"kind": "capture", "idempotency_key": "k", "payment_id": "p", "amount": "ten"},
            "amount must be a positive integer",
        ),
        (
            {"kind": "capture", "idempotency_key": "k", "payment_id": "p", "amount": True},
            "amount must be a positive integer",
        ),
        (
            {"kind": "refund", "idempotency_key": "k", "payment_id": "p", "amount": 0},
            "amount must be a positive integer",
        ),
        (
            {"kind": "authorize", "idempotency_key": "k", "payment_id": "p"},
            "authorize needs an amount",
        ),
        (
            {
                "kind": "authorize",
                "idempotency_key": "k",
                "payment_id": "p",
                "amount": 5,
                "currency": "eur",
            },
            "currency must be three capital letters",
        ),
        (
            {
                "kind": "authorize",
                "idempotency_key": "k",
                "payment_id": "p",
                "amount": 5,
                "currency": "EUR",
                "customer_id": "c",
            },
            "merchant_id must be",
        ),
    ],
)
def test_malformed_commands_get_a_clear_error(raw: Any, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(raw)


def test_a_well_formed_command_parses() -> None:
    cmd = parse_command(
        {
            "kind": "authorize",
            "idempotency_key": "k",
            "payment_id": "p",
            "amount": 5,
            "currency": "EUR",
            "merchant_id": "m",
            "customer_id": "c",
        }
    )
    assert cmd == Command("authorize", "k", "p", "m", "c", 5, "EUR")


_KINDS = ("capture", "void", "refund", "chargeback", "fraud_hold", "fraud_release")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.none() | st.integers(1, 1200)), max_size=12))
def test_no_command_sequence_breaks_the_money_invariants(
    commands: list[tuple[str, int | None]],
) -> None:
    state, decisions = run(*commands)
    assert 0 <= state.captured <= state.authorized
    assert state.refunded + state.charged_back <= state.captured
    assert not (state.status == "voided" and state.captured)
    assert state.version == sum(isinstance(d, Accepted) for d in decisions)

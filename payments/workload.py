"""The demo's and the bench's seeded workload: command scripts for N payments.

Owns: `make_workload(payments, merchants, seed)` -> commands (plain dicts, as a client
would send them) in issue order, each tagged with the payment index it belongs to.
Guarantees: the same arguments give the same commands. Besides the happy paths
(authorize -> capture, partial captures, voids, refunds, chargebacks, fraud holds) it
mixes in what real clients do wrong: retries with the same idempotency key, captures
after a void, refunds above the captured amount, commands for unknown payment ids and
malformed commands — each must be rejected (or answered once) and produce no event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

CURRENCIES = ("EUR", "EUR", "EUR", "USD", "USD", "GBP")
SPREAD = 7  # a payment's k-th command is issued about k*SPREAD payments after its authorize


@dataclass(frozen=True)
class PlannedCommand:
    slot: int  # issue when `slot` payments' worth of time has passed
    payment_index: int  # 0 for the workload's first payment
    body: dict[str, Any]


def _script(rng: random.Random, i: int, merchants: int) -> list[dict[str, Any]]:
    pid = f"pay-{i:07d}"
    amount = rng.randrange(100, 50_000)
    out: list[dict[str, Any]] = [
        {
            "kind": "authorize",
            "payment_id": pid,
            "amount": amount,
            "currency": rng.choice(CURRENCIES),
            "merchant_id": f"m-{rng.randrange(merchants):04d}",
            "customer_id": f"c-{rng.randrange(merchants * 20):06d}",
        }
    ]

    def cmd(kind: str, amount: int | None = None) -> None:
        body: dict[str, Any] = {"kind": kind, "payment_id": pid}
        if amount is not None:
            body["amount"] = amount
        out.append(body)

    r = rng.random()
    captured = amount
    if r < 0.08:
        cmd("void")
        if rng.random() < 0.3:
            cmd("capture")  # rejected: captured after a void
        captured = 0
    elif r < 0.13:
        cmd("fraud_hold")
        cmd("fraud_release")
        cmd("capture")
    elif r < 0.16:
        cmd("fraud_hold")
        cmd("capture")  # rejected: on hold
        captured = 0
    elif r < 0.30:
        first = amount // 2
        cmd("capture", first)
        if rng.random() < 0.5:
            cmd("capture")  # the rest
        else:
            captured = first
    else:
        cmd("capture")
    if captured:
        r = rng.random()
        if r < 0.10:
            cmd("refund", max(1, captured // 3))
        elif r < 0.15:
            cmd("refund")
        elif r < 0.18:
            cmd("chargeback")
        elif r < 0.20:
            cmd("refund", captured + 1)  # rejected: refunds would exceed captures
    return out


def make_workload(payments: int, merchants: int, seed: int, first: int = 0) -> list[PlannedCommand]:
    """Payments `pay-<first>` ... `pay-<first + payments - 1>`; slots count from 0."""
    rng = random.Random(seed)
    planned: list[PlannedCommand] = []
    for n in range(payments):
        i = first + n
        for k, body in enumerate(_script(rng, i, merchants)):
            body["idempotency_key"] = f"{body['payment_id']}:{k}"
            slot = n + k * SPREAD
            planned.append(PlannedCommand(slot, n, body))
            if rng.random() < 0.03:  # a client retry: same key, same command
                planned.append(PlannedCommand(slot + rng.randrange(1, 50), n, dict(body)))
        if i % 500 == 499:
            planned.append(
                PlannedCommand(
                    n,
                    n,
                    {"kind": "capture", "payment_id": f"unknown-{i}", "idempotency_key": f"u-{i}"},
                )
            )
        if i % 1000 == 999:
            planned.append(
                PlannedCommand(
                    n,
                    n,
                    {
                        "kind": "refund",
                        "payment_id": f"pay-{i:07d}",
                        "amount": "ten",
                        "idempotency_key": f"bad-{i}",
                    },
                )
            )
    planned.sort(key=lambda c: c.slot)
    return planned

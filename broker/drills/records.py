"""What a drill produces and how its outcome is judged: pure, no I/O, no clock.

Owns: the payments (keyed `pay-<k>`, a per-key sequence number in each JSON value, drawn
from a seed so a drill is reproducible), the records the producer was told about (`Ack`)
and read back (`ReadRecord`), and the rules: `verify` counts acknowledged records that
are lost, duplicated or out of order; the helpers pick acks by arrival time so a
scenario can say which ones came after a failure.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

PAYMENT_IDS = 500


@dataclass(frozen=True)
class Payment:
    key: str
    seq: int
    value: bytes


@dataclass(frozen=True)
class Ack:
    """One delivery report without error: where the broker said the record is."""

    partition: int
    offset: int
    key: str
    seq: int
    value: bytes


@dataclass(frozen=True)
class ReadRecord:
    partition: int
    offset: int
    key: str
    value: bytes


@dataclass(frozen=True)
class Verdict:
    acknowledged: int
    read_back: int
    acked_read_back: int
    lost: int
    duplicated: int
    out_of_order: int


def payment_stream(seed: int, ids: int = PAYMENT_IDS) -> Iterator[Payment]:
    """Endless payments over `ids` keys drawn from Random(seed); seq counts up per key."""
    rng = random.Random(seed)
    next_seq: dict[str, int] = {}
    while True:
        key = f"pay-{rng.randrange(ids)}"
        seq = next_seq.get(key, 0)
        next_seq[key] = seq + 1
        body = {"id": key, "seq": seq, "amount_cents": rng.randrange(1, 100_000)}
        yield Payment(key, seq, json.dumps(body, separators=(",", ":")).encode())


def make_payments(count: int, seed: int, ids: int = PAYMENT_IDS) -> list[Payment]:
    """The first `count` payments of payment_stream(seed, ids)."""
    return list(itertools.islice(payment_stream(seed, ids), count))


def acks_between(acks: Sequence[tuple[float, Ack]], start: float, end: float) -> list[Ack]:
    """The acks that arrived in [start, end) (times are the drill's monotonic clock)."""
    return [ack for at, ack in acks if start <= at < end]


def first_ack_after(acks: Sequence[tuple[float, Ack]], moment: float) -> float | None:
    return next((at for at, _ in acks if at >= moment), None)


def lost_acks(acked: Iterable[Ack], read: Sequence[ReadRecord]) -> list[Ack]:
    """The acks whose (partition, offset) is missing from `read` or holds another record."""
    at = {(r.partition, r.offset): r for r in read}
    out = []
    for ack in acked:
        got = at.get((ack.partition, ack.offset))
        if got is None or got.key != ack.key or got.value != ack.value:
            out.append(ack)
    return out


def seq_of(value: bytes) -> int:
    seq: int = json.loads(value)["seq"]
    return seq


def verify(acked: Iterable[Ack], read: Sequence[ReadRecord]) -> Verdict:
    """Compare what the producer was told with what a consumer reads back.

    lost: an acknowledged (partition, offset) that is missing or holds another key/value.
    duplicated: a (key, seq) read more than once. out_of_order: a (key, seq) read after a
    higher seq of the same key in the same partition (`read` is in offset order).
    """
    acked = list(acked)
    at = {(r.partition, r.offset): r for r in read}
    lost = len(lost_acks(acked, read))
    seen: set[tuple[str, int]] = set()
    last: dict[tuple[int, str], int] = {}
    duplicated = out_of_order = 0
    for rec in read:
        seq = seq_of(rec.value)
        if (rec.key, seq) in seen:
            duplicated += 1
            continue
        seen.add((rec.key, seq))
        if seq < last.get((rec.partition, rec.key), -1):
            out_of_order += 1
        last[(rec.partition, rec.key)] = max(seq, last.get((rec.partition, rec.key), -1))
    acked_positions = {(a.partition, a.offset) for a in acked}
    return Verdict(
        acknowledged=len(acked),
        read_back=len(read),
        acked_read_back=sum(1 for pos in acked_positions if pos in at),
        lost=lost,
        duplicated=duplicated,
        out_of_order=out_of_order,
    )

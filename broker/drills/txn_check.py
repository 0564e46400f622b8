"""The txn drill's output records and their judge: pure, no I/O, no clock.

Owns: the value the pipeline writes for one input record (`output_value`: the input's
partition, offset, key and seq, the transaction it was written in, and `abort` when the
pipeline meant to abort that transaction) and `check`, which counts the anomalies of
Jepsen's Kafka workload in what the drill observed:

- aborted reads (G1a): a read_committed consumer handed out a record of a transaction
  that did not commit (one the pipeline aborted on purpose, or one left open by a kill
  and aborted later);
- lost: an acknowledged input record with no committed output;
- duplicated: an input record with more than one committed output;
- reordered: a key's outputs in an output partition not in the order of its input seqs;
- read past the LSO: a read_committed Fetch response returned a batch reaching the
  last stable offset that same response reported, or beyond it.

Duplicates and reordering are `records.verify`'s rules (a (key, seq) read twice; a
lower seq after a higher one of the same key in a partition), applied to the outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tidelog.broker.drills.records import Ack, ReadRecord, verify


@dataclass(frozen=True)
class Output:
    """One record of the output topic, at (partition, offset), and what it says."""

    partition: int
    offset: int
    key: str
    in_partition: int
    in_offset: int
    seq: int
    txn: str
    abort: bool


@dataclass(frozen=True)
class FetchedBatch:
    """One batch a read_committed Fetch response returned while the drill ran, with the
    last stable offset and high watermark that same response reported."""

    partition: int
    base_offset: int
    last_offset: int
    lso: int
    high_watermark: int


@dataclass(frozen=True)
class TxnVerdict:
    inputs_acked: int
    committed_outputs: int
    uncommitted_outputs: int
    tailed: int
    fetched_batches: int
    aborted_on_purpose_written: int  # outputs of deliberate aborts read read_uncommitted
    left_open_by_kills_written: int  # other outputs read read_uncommitted, not committed
    aborted_reads: int
    lost: int
    duplicated: int
    reordered: int
    read_past_lso: int
    # Up to DUPLICATE_EXAMPLES duplicated inputs, each with where its outputs are, so a
    # failed run says whether the log holds two outputs or one was read twice.
    duplicate_examples: tuple[str, ...] = ()

    def anomalies(self) -> int:
        return (
            self.aborted_reads + self.lost + self.duplicated + self.reordered + self.read_past_lso
        )


def output_value(
    in_partition: int, in_offset: int, key: str, seq: int, txn: str, abort: bool
) -> bytes:
    body = {"in": [in_partition, in_offset], "id": key, "seq": seq, "txn": txn, "abort": abort}
    return json.dumps(body, separators=(",", ":")).encode()


def parse_output(partition: int, offset: int, value: bytes) -> Output:
    body = json.loads(value)
    in_partition, in_offset = body["in"]
    return Output(
        partition,
        offset,
        body["id"],
        in_partition,
        in_offset,
        body["seq"],
        body["txn"],
        body["abort"],
    )


DUPLICATE_EXAMPLES = 5


def duplicate_examples(committed: Sequence[Output]) -> tuple[str, ...]:
    """`key seq=N: p@offset txn=T, ...` for the first inputs with two committed outputs."""
    where: dict[tuple[str, int], list[str]] = {}
    for r in committed:
        where.setdefault((r.key, r.seq), []).append(f"{r.partition}@{r.offset} txn={r.txn}")
    twice = [(k, places) for k, places in where.items() if len(places) > 1]
    return tuple(
        f"{key} seq={seq}: {', '.join(places)}" for (key, seq), places in twice[:DUPLICATE_EXAMPLES]
    )


def check(
    inputs: Iterable[Ack],
    committed: Sequence[Output],
    uncommitted: Sequence[Output],
    tailed: Sequence[Output],
    fetched: Sequence[FetchedBatch],
) -> TxnVerdict:
    """Judge the drill's history: the acknowledged inputs, the output topic read back
    read_committed and read_uncommitted once the pipeline processed every input (each
    in offset order per partition), what a read_committed consumer handed out while the
    drill ran (`tailed`), and the batches raw read_committed fetches got meanwhile."""
    inputs = list(inputs)
    committed_at = {(r.partition, r.offset) for r in committed}
    aborted = {(r.partition, r.offset) for r in committed if r.abort}
    aborted |= {
        (r.partition, r.offset)
        for r in tailed
        if r.abort or (r.partition, r.offset) not in committed_at
    }
    outputs_of = {(r.in_partition, r.in_offset, r.key, r.seq) for r in committed}
    lost = sum(1 for a in inputs if (a.partition, a.offset, a.key, a.seq) not in outputs_of)
    as_read = [ReadRecord(r.partition, r.offset, r.key, output_value_of(r)) for r in committed]
    order = verify((), as_read)
    return TxnVerdict(
        inputs_acked=len(inputs),
        committed_outputs=len(committed),
        uncommitted_outputs=len(uncommitted),
        tailed=len(tailed),
        fetched_batches=len(fetched),
        aborted_on_purpose_written=sum(1 for r in uncommitted if r.abort),
        left_open_by_kills_written=sum(
            1 for r in uncommitted if not r.abort and (r.partition, r.offset) not in committed_at
        ),
        aborted_reads=len(aborted),
        lost=lost,
        duplicated=order.duplicated,
        reordered=order.out_of_order,
        read_past_lso=sum(1 for b in fetched if b.last_offset >= b.lso),
        duplicate_examples=duplicate_examples(committed) if order.duplicated else (),
    )


def output_value_of(record: Output) -> bytes:
    return output_value(
        record.in_partition, record.in_offset, record.key, record.seq, record.txn, record.abort
    )

"""The txn drill's consume-transform-produce pipeline, a process of its own (for kill -9).

`python -m tidelog.broker.drills.txn_pipeline --bootstrap HOST:PORT ...` reads the input
topic read_committed from its group's committed offsets (partitions assigned, not
subscribed: a killed member would otherwise hold the group until its session timed out)
and, for every input record, writes one output record (same key, same partition number;
the value says which input it came from, see txn_check.output_value) inside a
transaction with the input offsets (`send_offsets_to_transaction`), committed every
`--txn-records` records or `--txn-ms` milliseconds. Some transactions, drawn from
Random(f"{seed}-{run}"), are aborted on purpose after their records and offsets were
sent; their records carry `abort: true` and their input is processed again.

Its stdout is the drill's view of it, one line per event: `pipeline started ...`,
`produced txn=... records=N` (written and flushed, not yet committed: the drill's cue to
kill while a transaction is open), `committed txn=... records=N to=P:O,...` (the input
positions the transaction committed), `aborted txn=... records=N reason=...`. SIGTERM
ends it after the current transaction (exit 0). An error that needs an abort aborts and
rewinds to the last committed positions; a fatal one (fenced, say) replaces the producer
(init_transactions again) and rewinds the same way.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from typing import Any

from tidelog.broker.drills.records import seq_of
from tidelog.broker.drills.txn_check import output_value

CALL_TIMEOUT_S = 30.0
POLL_S = 0.1


class Pipeline:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(f"{args.seed}-{args.run}")
        self.stopping = False
        self.txns = 0
        self.producer: Any = None
        self.consumer: Any = None
        self.positions: dict[int, int] = {}  # next input offset per partition, committed

    def open(self) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": self.args.bootstrap,
                "group.id": self.args.group,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 200,
                "log_level": 2,
            }
        )
        self.new_producer()

    def new_producer(self) -> None:
        from confluent_kafka import Producer

        if self.producer is not None:
            self.producer.flush(0)
        self.producer = Producer(
            {
                "bootstrap.servers": self.args.bootstrap,
                "transactional.id": self.args.transactional_id,
                "transaction.timeout.ms": self.args.txn_timeout_ms,
                "linger.ms": 5,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 200,
                "log_level": 2,
            }
        )
        retry(lambda: self.producer.init_transactions(CALL_TIMEOUT_S))
        self.rewind()

    def rewind(self) -> None:
        """Assign the input partitions at the group's committed offsets."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        parts = [TopicPartition(self.args.input, p) for p in range(self.args.partitions)]
        found = retry(lambda: self.consumer.committed(parts, CALL_TIMEOUT_S))
        self.positions = {tp.partition: max(tp.offset, 0) for tp in found}
        self.consumer.assign(
            [
                TopicPartition(self.args.input, p, off if off > 0 else OFFSET_BEGINNING)
                for p, off in self.positions.items()
            ]
        )

    def run(self) -> None:
        self.open()
        say(f"pipeline started transactional_id={self.args.transactional_id} run={self.args.run} "
            f"from={positions_text(self.positions)}")  # fmt: skip
        while not self.stopping:
            batch = self.collect()
            if batch:
                self.transact(batch)
        self.consumer.close()
        say("pipeline stopped")

    def collect(self) -> list[Any]:
        """Up to --txn-records input records, for at most --txn-ms from the first."""
        batch: list[Any] = []
        deadline: float | None = None
        while len(batch) < self.args.txn_records and not self.stopping:
            left = POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            msgs = self.consumer.consume(self.args.txn_records - len(batch), min(left, POLL_S))
            for msg in msgs:
                if msg.error() is None:
                    batch.append(msg)
            if batch and deadline is None:
                deadline = time.monotonic() + self.args.txn_ms / 1000
            if not batch and deadline is None and not msgs:
                return batch
        return batch

    def transact(self, batch: list[Any]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        self.txns += 1
        txn = f"{self.args.run}-{self.txns}"
        on_purpose = self.rng.random() < self.args.abort_ratio
        to = dict(self.positions)
        for msg in batch:
            to[msg.partition()] = msg.offset() + 1
        try:
            self.producer.begin_transaction()
            for msg in batch:
                self.produce(msg, txn, on_purpose)
            self.producer.flush(CALL_TIMEOUT_S)
            say(f"produced txn={txn} records={len(batch)}")  # open, its records written
            offsets = [TopicPartition(self.args.input, p, off) for p, off in sorted(to.items())]
            metadata = self.consumer.consumer_group_metadata()
            retry(
                lambda: self.producer.send_offsets_to_transaction(offsets, metadata, CALL_TIMEOUT_S)
            )
            if on_purpose:
                retry(lambda: self.producer.abort_transaction(CALL_TIMEOUT_S))
                say(f"aborted txn={txn} records={len(batch)} reason=on-purpose")
                self.rewind()
                return
            retry(lambda: self.producer.commit_transaction(CALL_TIMEOUT_S))
        except KafkaException as exc:
            self.recover(txn, len(batch), exc)
            return
        self.positions = to
        say(f"committed txn={txn} records={len(batch)} to={positions_text(to)}")

    def produce(self, msg: Any, txn: str, on_purpose: bool) -> None:
        key = (msg.key() or b"").decode()
        seq = seq_of(msg.value())
        value = output_value(msg.partition(), msg.offset(), key, seq, txn, on_purpose)
        while True:
            try:
                self.producer.produce(
                    self.args.output, key=msg.key(), value=value, partition=msg.partition()
                )
                return
            except BufferError:
                self.producer.poll(0.05)

    def recover(self, txn: str, records: int, exc: Any) -> None:
        error = exc.args[0]
        if error.txn_requires_abort():
            try:
                retry(lambda: self.producer.abort_transaction(CALL_TIMEOUT_S))
                say(f"aborted txn={txn} records={records} reason={error.name()}")
                self.rewind()
                return
            except Exception as again:  # the abort failed too: start over with a new producer
                error = again
        say(f"aborted txn={txn} records={records} reason=fatal:{error}; new producer")
        self.new_producer()


def retry(call: Any) -> Any:
    """`call()`, again while it fails with a retriable error (a broker restarting)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + 4 * CALL_TIMEOUT_S
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def positions_text(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{off}" for p, off in sorted(positions.items()))


def say(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="txn_pipeline", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run", type=int, default=1, help="which start of the pipeline this is")
    parser.add_argument("--txn-records", type=int, default=50)
    parser.add_argument("--txn-ms", type=int, default=100)
    parser.add_argument("--txn-timeout-ms", type=int, default=10_000)
    parser.add_argument("--abort-ratio", type=float, default=0.2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    pipeline = Pipeline(parse_args(sys.argv[1:] if argv is None else argv))

    def stop(*_: object) -> None:
        pipeline.stopping = True

    signal.signal(signal.SIGTERM, stop)
    pipeline.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Produce and consume throughput, tidelog side by side with the peer broker Tansu 0.6.

One run starts each broker in turn (alternating over --rounds so machine drift hits
both), drives it with the same librdkafka producer (1 KiB values, acks=all, linger
5 ms, 1 MiB batches, 6 partitions) and then a consumer reading everything back, and
prints MB/s for each broker and the tidelog/peer ratio (medians over the rounds).

    python bench/throughput.py                      # embedded default vs Tansu memory
    python bench/throughput.py --s3 moto            # object mode on moto vs Tansu on S3

Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

if __package__ in (None, ""):  # run as `python bench/throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import (
    PARTITIONS,
    S3Endpoint,
    create_topic,
    empty_s3,
    run_broker,
    s3_client,
    s3_server,
)

VALUE_SIZE = 1024
MB = 1_000_000
# The producer of every throughput figure (and of bench/compaction.py's records)
PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "linger.ms": 5,
    "batch.size": 1 << 20,
    "queue.buffering.max.kbytes": 1 << 20,
    "enable.idempotence": False,
    "log.connection.close": False,
}


def produce(
    bootstrap: str,
    topic: str,
    total_bytes: int,
    value_size: int = VALUE_SIZE,
    partitions: int = PARTITIONS,
    config: Mapping[str, Any] | None = None,
) -> float:
    """Seconds to produce and have acknowledged `total_bytes` of `value_size`-byte values;
    `config` adds to (or overrides) the producer's settings, e.g. a listener's security."""
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS, **(config or {})})
    value = os.urandom(value_size // 2).hex().encode()
    count = total_bytes // value_size
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(
                    topic, value=value, partition=i % partitions, on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.001)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("produce did not finish in 120 s")
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} deliveries failed, first: {failures[0]}")
    return elapsed


def consume(
    bootstrap: str,
    topic: str,
    count: int,
    partitions: int = PARTITIONS,
    config: Mapping[str, Any] | None = None,
) -> float:
    """Seconds to read `count` records back from offset 0 of every partition; `config`
    as for `produce`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 << 20,
            "max.partition.fetch.bytes": 8 << 20,
            # librdkafka >= 2.2 stops fetching a partition for this long (default 1 s)
            # once its local queue is full: a broker that outran this Python loop sat
            # idle for most of a second (docs/benchmarks.md, "Client settings").
            "fetch.queue.backoff.ms": 10,
            "log.connection.close": False,
            **(config or {}),
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        seen = 0
        start = time.perf_counter()
        deadline = time.monotonic() + 180
        while seen < count and time.monotonic() < deadline:
            # never ask for more than is left: consume() waits out its timeout otherwise
            for msg in consumer.consume(min(10000, count - seen), 0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                seen += 1
        elapsed = time.perf_counter() - start
        if seen < count:
            raise RuntimeError(f"consumed {seen} of {count} records")
        return elapsed
    finally:
        consumer.close()


@dataclass
class Figures:
    produce: list[float] = field(default_factory=list)
    consume: list[float] = field(default_factory=list)


def one_round(kind: str, workdir: Path, s3: S3Endpoint | None, total: int, figs: Figures) -> None:
    with run_broker(kind, workdir, s3) as (bootstrap, _):
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        create_topic(bootstrap, topic)
        warmup = min(total, 20 * MB)
        produce(bootstrap, topic, warmup)  # connections, metadata, allocator
        p = produce(bootstrap, topic, total)
        count = warmup // VALUE_SIZE + total // VALUE_SIZE
        c = consume(bootstrap, topic, count)
        figs.produce.append(total / MB / p)
        figs.consume.append(count * VALUE_SIZE / MB / c)
        print(
            f"  {kind:8s} produce {figs.produce[-1]:8.1f} MB/s   consume "
            f"{figs.consume[-1]:8.1f} MB/s",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="megabytes produced per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="skip Tansu")
    parser.add_argument(
        "--s3", choices=["moto", "seaweedfs"], help="object mode on this S3 server (both brokers)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    total = args.mb * MB
    kinds = ["tidelog"] if args.no_peer else ["tidelog", "tansu"]
    results = {k: Figures() for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-") as tmp:
        workdir = Path(tmp)
        with contextlib.ExitStack() as stack:
            s3 = stack.enter_context(s3_server(args.s3, workdir)) if args.s3 else None
            if s3 is not None:
                s3_client(s3).create_bucket(Bucket=s3.bucket)
            mode = f"object mode on {args.s3}" if s3 else "embedded default (wal + local dir)"
            peer = f"s3 engine on {args.s3}" if s3 else "memory engine"
            print(f"tidelog: {mode}; tansu: {peer}")
            print(f"{args.mb} MB of 1 KiB values per round, {PARTITIONS} partitions, acks=all")
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds}")
                order = kinds if r % 2 == 0 else list(reversed(kinds))
                for kind in order:
                    one_round(kind, workdir, s3, total, results[kind])
                    if s3 is not None:
                        empty_s3(s3)  # each run starts on an empty server (see empty_s3)
    summary: dict[str, dict[str, float]] = {}
    print("\nmedian over rounds (min-max):")
    for kind, figs in results.items():
        summary[kind] = {
            "produce_mb_s": statistics.median(figs.produce),
            "consume_mb_s": statistics.median(figs.consume),
        }
        print(
            f"  {kind:8s} produce {statistics.median(figs.produce):8.1f} MB/s "
            f"({min(figs.produce):.1f}-{max(figs.produce):.1f})   consume "
            f"{statistics.median(figs.consume):8.1f} MB/s "
            f"({min(figs.consume):.1f}-{max(figs.consume):.1f})"
        )
    if "tansu" in summary:
        t, p = summary["tidelog"], summary["tansu"]
        ratio_p = t["produce_mb_s"] / p["produce_mb_s"]
        ratio_c = t["consume_mb_s"] / p["consume_mb_s"]
        summary["ratio"] = {"produce": ratio_p, "consume": ratio_c}
        print(f"  tidelog/tansu: produce {ratio_p:.2f}x   consume {ratio_c:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The workloads of `tidelog bench`: each runs once against one `Side` and returns its figures.

Owns: what each workload does to a broker and which numbers it reports (a flat
`{metric: value}` per run; the suite collects runs into medians). Every workload starts
its own broker(s) on a fresh store, drives them with confluent-kafka (librdkafka) and stops
them. Figures only: nothing here judges a number (see bench/report.py for the targets).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from tidelog.bench import cost_bucket, cost_model, groups
from tidelog.bench.brokers import PARTITIONS, ROOT, create_topic
from tidelog.bench.s3proxy import CountingProxy
from tidelog.bench.sides import TIDELOG_FLUSH_INTERVAL_MS, Running, Side, rss_kib
from tidelog.bench.throughput import consume, produce

MB = 1_000_000
KIB = 1024

COST_RATE_MB_S = 10  # the sustained workload the monthly price is for (bench/cost_model.py)
LATENCY_GRACE_S = 20.0  # how long the latency run waits for the last acks and records


@dataclass(frozen=True)
class Params:
    """Sizes and durations; `quick()` is the one-minute smoke run."""

    produce_mb_1k: int = 200
    produce_mb_100b: int = 40
    consume_mb: int = 100
    latency_s: float = 20.0
    latency_rate: int = 2000
    latency_value: int = 512
    cost_s: float = 10.0
    cost_partitions: tuple[int, ...] = (6, 1000)
    memory_partitions: tuple[int, ...] = (1000, 10000)
    memory_mb: int = 40
    drill_records: int = 20_000
    group_timeout_s: float = 60.0
    s3_put_samples: int = 200
    s3_put_bytes: int = 256 * KIB

    @staticmethod
    def quick() -> Params:
        return Params(
            produce_mb_1k=10,
            produce_mb_100b=3,
            consume_mb=10,
            latency_s=2.0,
            cost_s=2.0,
            memory_mb=4,
            drill_records=10_000,  # ~2 s of paced load, so the kill lands inside it
            group_timeout_s=20.0,
            s3_put_samples=30,
        )


@dataclass
class Context:
    """What some workloads need beyond the broker: the request counter in front of S3."""

    proxy: CountingProxy | None
    profile_dir: Path | None = None


Figures = dict[str, float | None]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    run: Callable[[Side, Params, Context], Figures]
    setups: tuple[str, ...] = ("local", "s3")
    peer: bool = True  # also run against Tansu
    higher_is_better: frozenset[str] = field(default_factory=frozenset)


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# -- 1. produce throughput -----------------------------------------------------------------


def run_produce(side: Side, p: Params, ctx: Context) -> Figures:
    out: Figures = {}
    with side.broker(side.new_store(), profile_to=_profile(ctx, side, "produce")) as b:
        for label, size, mb in (("1KiB", KIB, p.produce_mb_1k), ("100B", 100, p.produce_mb_100b)):
            topic = _topic("produce")
            create_topic(b.bootstrap, topic)
            produce(b.bootstrap, topic, min(mb, 10) * MB // 4, size)  # warm-up
            seconds = produce(b.bootstrap, topic, mb * MB, size)
            out[f"produce_{label}_mb_s"] = mb / seconds
            out[f"produce_{label}_msg_s"] = mb * MB / size / seconds
    return out


# -- 2. consume throughput, hot and cold ----------------------------------------------------


def run_consume(side: Side, p: Params, ctx: Context) -> Figures:
    store = side.new_store()
    topic = _topic("consume")
    count = p.consume_mb * MB // KIB
    with side.broker(store, profile_to=_profile(ctx, side, "consume")) as b:
        create_topic(b.bootstrap, topic)
        produce(b.bootstrap, topic, p.consume_mb * MB)
        hot = consume(b.bootstrap, topic, count)
    out: Figures = {"consume_hot_mb_s": count * KIB / MB / hot, "consume_cold_mb_s": None}
    if side.durable:  # a fresh process on the same data: nothing in its caches
        with side.broker(store, node_id=2) as b:
            cold = consume(b.bootstrap, topic, count)
        out["consume_cold_mb_s"] = count * KIB / MB / cold
    return out


# -- 3. latency ------------------------------------------------------------------------------


def _percentile(values: list[float], q: float, expected: int | None = None) -> float | None:
    """The q-quantile; records still missing out of `expected` count as slower than any
    seen, so a broker that falls behind gets no figure (None) rather than a flattering one."""
    ordered = sorted(values)
    index = int(q * max(len(ordered), expected or 0))
    return ordered[index] if index < len(ordered) else None


def run_latency(side: Side, p: Params, ctx: Context) -> Figures:
    with side.broker(side.new_store(), profile_to=_profile(ctx, side, "latency")) as b:
        topic = _topic("latency")
        create_topic(b.bootstrap, topic)
        produced, e2e = paced_produce_consume(b.bootstrap, topic, p)
    measured = int(p.latency_rate * p.latency_s)
    return {
        "produce_p50_ms": _percentile(produced, 0.50, measured),
        "produce_p99_ms": _percentile(produced, 0.99, measured),
        "produce_p999_ms": _percentile(produced, 0.999, measured),
        "e2e_p50_ms": _percentile(e2e, 0.50, measured),
        "e2e_p99_ms": _percentile(e2e, 0.99, measured),
        "acked_in_time_pct": 100 * len(produced) / measured,
    }


def paced_produce_consume(bootstrap: str, topic: str, p: Params) -> tuple[list[float], list[float]]:
    """Produce at a fixed rate (linger 0, acks=all) while a consumer reads the tail.

    Returns per-record produce latency (librdkafka's own produce() -> ack time) and
    end-to-end latency (produce() call -> the consumer holds the record), in ms. The first
    second is a warm-up and not counted.
    """
    warmup = p.latency_rate
    total = warmup + int(p.latency_rate * p.latency_s)
    e2e: list[float] = []
    received = [0]
    stop = threading.Event()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _topic("lat"),
            "enable.auto.commit": False,
            "log.connection.close": False,
        }
    )
    consumer.assign([TopicPartition(topic, i, 0) for i in range(PARTITIONS)])

    def read() -> None:
        while not stop.is_set() and received[0] < total:
            for msg in consumer.consume(1000, 0.05):
                now = time.perf_counter_ns()
                if msg.error() is None:
                    received[0] += 1
                    seq, sent = int.from_bytes(msg.value()[:8]), int.from_bytes(msg.value()[8:16])
                    if seq >= warmup:
                        e2e.append((now - sent) / 1e6)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "enable.idempotence": False,
            "log.connection.close": False,
        }
    )
    produced: list[float] = []
    pad = b"\0" * (p.latency_value - 16)

    def delivered(err: Any, msg: Any) -> None:
        if err is None and int.from_bytes(msg.value()[:8]) >= warmup:
            produced.append(msg.latency() * 1000)

    start = time.perf_counter()
    try:
        for seq in range(total):
            due = start + seq / p.latency_rate
            while (wait := due - time.perf_counter()) > 0:
                producer.poll(wait)
            value = seq.to_bytes(8) + time.perf_counter_ns().to_bytes(8) + pad
            producer.produce(topic, value, partition=seq % PARTITIONS, on_delivery=delivered)
            producer.poll(0)
        # a broker that cannot keep up is given LATENCY_GRACE_S, not forever
        if producer.flush(LATENCY_GRACE_S) != 0:
            producer.purge()
        reader.join(LATENCY_GRACE_S)
    finally:
        stop.set()
        reader.join(5)
        consumer.close()
    return produced, e2e


def s3_put_latency(s3_url: str, env: dict[str, str], p: Params) -> Figures:
    """The S3 server's own PUT latency, from boto3 (the path the broker uses, proxy and all)."""
    from tidelog.bench.brokers import S3Endpoint, s3_client

    client: Any = s3_client(S3Endpoint(s3_url, env, "bench"))
    body = os.urandom(p.s3_put_bytes)
    seconds: list[float] = []
    for i in range(p.s3_put_samples):
        start = time.perf_counter()
        client.put_object(Bucket="bench", Key=f"put-latency/{i:06d}", Body=body)
        seconds.append((time.perf_counter() - start) * 1000)
    return {"put_p50_ms": _percentile(seconds, 0.5), "put_p99_ms": _percentile(seconds, 0.99)}


# -- 4. object-store cost --------------------------------------------------------------------


def paced_produce(bootstrap: str, topic: str, partitions: int, mb_s: float, seconds: float) -> int:
    """Produce 1 KiB values at `mb_s` for `seconds` (acks=all); returns bytes acknowledged."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "enable.idempotence": False,
            "log.connection.close": False,
            # a broker that cannot keep the pace slows the producer down (BufferError)
            # instead of piling up a backlog the final flush would wait minutes for
            "queue.buffering.max.messages": 4000,
        }
    )
    value = os.urandom(KIB)
    per_tick = max(1, int(mb_s * MB / KIB / 100))  # 10 ms ticks
    start = time.perf_counter()
    sent = 0
    tick = 0
    while time.perf_counter() - start < seconds:
        for _ in range(per_tick):
            try:
                producer.produce(topic, value, partition=sent % partitions)
            except BufferError:
                producer.poll(0.01)
                break
            sent += 1
        tick += 1
        while (wait := start + tick / 100 - time.perf_counter()) > 0:
            producer.poll(wait)
    if producer.flush(120) != 0:
        raise RuntimeError("paced produce did not finish in 120 s")
    return sent * KIB


def run_cost(side: Side, p: Params, ctx: Context) -> Figures:
    if ctx.proxy is None:
        raise RuntimeError("the cost workload needs the counting S3 proxy")
    out: Figures = {}
    tidelog = side.kind == "tidelog"
    args = cost_bucket.LIFECYCLE_ARGS if tidelog else ()
    config = cost_bucket.LIFECYCLE_TOPIC if tidelog else None
    first = p.cost_partitions[0]
    replay_gets_per_gb = 0.0
    for partitions in p.cost_partitions:
        store = side.new_store()
        topic = _topic("cost")
        suffix = f"_{partitions}p"
        try:
            with side.broker(store, args=args) as b:
                create_topic(b.bootstrap, topic, partitions, config)
                before = ctx.proxy.snapshot()
                start = time.perf_counter()
                produced = paced_produce(b.bootstrap, topic, partitions, COST_RATE_MB_S, p.cost_s)
                elapsed = time.perf_counter() - start
                after_produce = ctx.proxy.snapshot()
                writes = after_produce - before
                settled = cost_bucket.settle(ctx.proxy) if tidelog else after_produce
                lifecycle = settled - before
        except Exception as exc:
            if partitions == first:
                raise
            # keep the first partition count's figures; these show as missing
            print(f"  cost {side.label} partitions={partitions} failed: {exc!r}", flush=True)
            for name in _COST_FIGURES:
                out[name + suffix] = None
            continue
        stored = cost_bucket.stored_bytes(side, store)
        gb = produced / 1e9
        # the produce path: every PUT but the rolls' (none for Tansu, which has no segments/)
        puts = writes.requests["PUT"] - writes.areas["PUT segments"]
        put_bytes = writes.sent_bytes["PUT"] - writes.area_sent_bytes["PUT segments"]
        puts_s = puts / elapsed
        out["produced_mb_s" + suffix] = produced / MB / elapsed
        out["puts_per_s" + suffix] = puts_s
        out["puts_per_flush_interval" + suffix] = puts_s * TIDELOG_FLUSH_INTERVAL_MS / 1000
        out["puts_per_gb" + suffix] = puts / gb
        out["put_mb_per_gb" + suffix] = put_bytes / MB / gb
        if tidelog:
            out["roll_puts_per_gb" + suffix] = lifecycle.areas["PUT segments"] / gb
            out["lifecycle_gets_per_gb" + suffix] = lifecycle.areas["GET streams"] / gb
            out["janitor_lists" + suffix] = float(lifecycle.requests["LIST"])
            out["janitor_deletes" + suffix] = float(lifecycle.requests["DELETE"])
            out["segments_mb_per_gb" + suffix] = stored["segments"] / MB / gb
            out["streams_mb_per_gb" + suffix] = stored["streams"] / MB / gb
        if partitions == first:  # a fresh broker replays the topic from the bucket
            with side.broker(store, node_id=2) as b:
                before = ctx.proxy.snapshot()
                consume(b.bootstrap, topic, produced // KIB, partitions)
                reads = ctx.proxy.snapshot() - before
            replay_gets_per_gb = reads.requests["GET"] / gb
            out["gets_per_gb_replayed"] = replay_gets_per_gb
            out["get_mb_per_gb_replayed"] = reads.received_bytes["GET"] / MB / gb
        rate = COST_RATE_MB_S * MB
        if tidelog:
            flush_puts_s = writes.areas["PUT streams"] / elapsed
            month = cost_model.tidelog_month(
                cost_model.TidelogRun(
                    rate_b_s=rate,
                    partitions=partitions,
                    flush_puts_s=flush_puts_s,
                    commit_bytes_per_b=writes.area_sent_bytes["PUT streams"] / produced,
                    segment_bytes_per_b=stored["segments"] / produced,
                    # at the priced rate, 1 KiB records spread over every partition
                    chunks_per_flush=min(partitions, rate / KIB / max(flush_puts_s, 1e-9)),
                    replay_gets_per_gb=replay_gets_per_gb,  # the first count's replay
                    flush_interval_s=TIDELOG_FLUSH_INTERVAL_MS / 1000,
                )
            )
        else:
            month = cost_model.all_history_month(
                rate, puts_s, put_bytes / produced, replay_gets_per_gb
            )
        # the first partition count's month keeps the names earlier results used
        month_suffix = "" if partitions == first else suffix
        out["stored_tb_steady" + month_suffix] = month.stored_gb / 1000
        out["usd_storage_per_month" + month_suffix] = month.storage
        out["usd_put_per_month" + month_suffix] = month.put
        out["usd_get_per_month" + month_suffix] = month.get
        out["usd_list_per_month" + month_suffix] = month.list
        out["usd_per_month" + month_suffix] = month.total
    return out


_COST_FIGURES = (
    "produced_mb_s", "puts_per_s", "puts_per_flush_interval", "puts_per_gb", "put_mb_per_gb",
    "roll_puts_per_gb", "lifecycle_gets_per_gb", "janitor_lists", "janitor_deletes",
    "segments_mb_per_gb", "streams_mb_per_gb", "stored_tb_steady", "usd_storage_per_month",
    "usd_put_per_month", "usd_get_per_month", "usd_list_per_month", "usd_per_month",
)  # fmt: skip


# -- 5. consumer groups ----------------------------------------------------------------------


def run_groups(side: Side, p: Params, ctx: Context) -> Figures:
    settings = groups.Settings(p.group_timeout_s, groups.HEARTBEAT_MS)
    with side.broker(side.new_store()) as b:
        filled, empty = _topic("groups-fill"), _topic("groups-lb")
        create_topic(b.bootstrap, filled)
        create_topic(b.bootstrap, empty)
        groups.fill(b.bootstrap, filled)
        first = groups.subscribe_to_first_record(b.bootstrap, filled, settings)
        try:
            rebalance = groups.rebalance_after_leave(b.bootstrap, empty, settings)
        except groups.SetupTimeout:
            rebalance = None
    return {"subscribe_first_record_s": first, "rebalance_3_members_s": rebalance}


# -- 6. replacement drill --------------------------------------------------------------------


def run_drill(side: Side, p: Params, ctx: Context) -> Figures:
    out: Figures = {}
    for mode in ("wal", "object"):
        report = drill_report(mode, p.drill_records)
        out[f"recovery_s_{mode}"] = report["recovery_s"]
        out[f"lost_{mode}"] = report["lost"]
    return out


def drill_report(mode: str, records: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tidelog.broker.cli", "drill", "replace", "--json"]
    cmd += ["--mode", mode, "--records", str(records)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=600, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(
            f"drill printed no JSON code={done.returncode} stderr={done.stderr[-500:]!r}"
        ) from None
    return report


# -- 7. memory -------------------------------------------------------------------------------


def run_memory(side: Side, p: Params, ctx: Context) -> Figures:
    out: Figures = {}
    for partitions in p.memory_partitions:
        with side.broker(side.new_store()) as b:
            topic = _topic("memory")
            create_topic(b.bootstrap, topic, partitions)
            peak = _produce_sampling_rss(b, topic, partitions, p.memory_mb)
            rss, hwm = rss_kib(b.pid)
        out[f"rss_mb_{partitions}p"] = max(peak, rss) / 1024
        out[f"peak_rss_mb_{partitions}p"] = hwm / 1024
    return out


def _produce_sampling_rss(b: Running, topic: str, partitions: int, mb: int) -> int:
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            samples.append(rss_kib(b.pid)[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        produce(b.bootstrap, topic, mb * MB, KIB, partitions)
        time.sleep(0.5)  # a flush or two after the load
    finally:
        stop.set()
        sampler.join()
    return max(samples, default=0)


def _profile(ctx: Context, side: Side, workload: str) -> Path | None:
    if ctx.profile_dir is None or side.kind != "tidelog":
        return None
    return ctx.profile_dir / f"profile-{workload}-{side.label}.raw"


WORKLOADS: tuple[Workload, ...] = (
    Workload("produce", "1. produce throughput (acks=all)", run_produce),
    Workload("consume", "2. consume throughput (hot: same process; cold: fresh one)", run_consume),
    Workload("latency", "3. latency at 2,000 msg/s, 512 B, linger 0", run_latency),
    Workload("cost", "4. object-store requests and cost (10 MB/s paced)", run_cost, ("s3",)),
    Workload("groups", "5. consumer group (librdkafka defaults)", run_groups, ("local",)),
    Workload("drill", "6. replacement drill (tidelog drill replace)", run_drill, ("local",), False),
    Workload("memory", "7. broker RSS under load", run_memory, ("local",)),
)

HIGHER_IS_BETTER = ("_mb_s", "_msg_s")


def summarize(samples: list[float | None]) -> dict[str, Any]:
    values = [v for v in samples if v is not None]
    return {
        "median": statistics.median(values) if values else None,
        "min": min(values, default=None),
        "max": max(values, default=None),
        "samples": samples,
        "missing": len(samples) - len(values),
    }

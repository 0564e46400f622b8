"""Section 3 of bench/compaction.py: the bucket of a topic with retention, over a day
scaled down to a few minutes (docs/benchmarks.md, "Compaction and retention").

A fresh broker (wal mode, file:// store) runs its lifecycle pass every second and deletes
what it let go a second later; one producer writes --rate-mb MB/s of 1 KiB values round
robin into a 6-partition topic whose `retention.ms` is the day's "hour" and `segment.ms`
its "ten minutes"; every --sample-s seconds the store's dir is listed. The first third
of the run fills the retention window; the mean of each half of the rest is compared.

Owns: the scale (`Day`), the broker options and topic config that make the lifecycle run
at that scale, the steady producer, and `bucket`, the count of files and bytes under a
file:// store's directory (in all, under segments/ and under streams/). Guarantees:
every figure is a sample of the run's own store; nothing is derived from the settings.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from tidelog.bench.brokers import PARTITIONS, ROOT, STOP_TIMEOUT_S, create_topic
from tidelog.bench.throughput import MB, PRODUCER_SETTINGS
from tidelog.broker.processes import BrokerProcess

TOPIC = "day"
# A pass every second, unnamed objects deleted a second after they are seen
# collectable. A stream writes a snapshot every 256 commits and the janitor collects a
# commit object only once two snapshots are past it (docs/segments.md): at a 50 ms
# flush interval that window is about 26 s instead of about 100 s, inside the day.
DAY_ARGS = (
    "--log-retention-check-interval-ms", "1000",
    "--log-segment-delete-delay-ms", "1000",
    "--flush-interval-ms", "50",
)  # fmt: skip
FILL_FRACTION = 1 / 3  # of the run, left out of the halves: the retention window fills


@dataclass(frozen=True)
class Day:
    seconds: float  # the run, standing for a day
    sample_s: float
    rate_mb: float
    value_bytes: int

    @property
    def retention_ms(self) -> int:  # an hour
        return max(1000, int(self.seconds * 1000 / 24))

    @property
    def segment_ms(self) -> int:  # ten minutes
        return max(200, int(self.seconds * 1000 / 144))

    def topic_config(self) -> dict[str, str]:
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_ms),
            "segment.ms": str(self.segment_ms),
            "file.delete.delay.ms": "1000",
        }


def bucket(objects: Path) -> dict[str, int]:
    """Files and bytes under the store's dir, in all and under segments/ and streams/."""
    out = dict.fromkeys(
        ("objects", "bytes", "segments", "segments_bytes", "streams", "streams_bytes"), 0
    )
    for path in objects.rglob("*"):
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
        except FileNotFoundError:  # deleted while listed
            continue
        area = path.relative_to(objects).parts[0]
        out["objects"] += 1
        out["bytes"] += size
        if area in ("segments", "streams"):
            out[area] += 1
            out[f"{area}_bytes"] += size
    return out


def halves(samples: list[dict[str, Any]], seconds: float) -> dict[str, dict[str, float]]:
    """Mean objects and bytes of each half of the samples after the fill."""
    steady = [s for s in samples if s["t_s"] >= seconds * FILL_FRACTION]
    mid = len(steady) // 2
    parts = {"first": steady[:mid], "second": steady[mid:]}
    return {
        name: {f: statistics.mean(s[f] for s in part) for f in ("objects", "bytes")}
        for name, part in parts.items()
        if part
    }


def retention_day(workdir: Path, day: Day) -> dict[str, Any]:
    """Produce at `day.rate_mb` MB/s for the day; the bucket sampled every `day.sample_s`."""
    data = workdir / "day"
    broker = BrokerProcess(data, log_level="warning", args=DAY_ARGS,
                           log_path=workdir / "day.log", cwd=ROOT)  # fmt: skip
    samples: list[dict[str, Any]] = []
    broker.start()
    try:
        create_topic(broker.bootstrap, TOPIC, config=day.topic_config())
        producer = Producer({"bootstrap.servers": broker.bootstrap, **PRODUCER_SETTINGS})
        value = os.urandom(day.value_bytes // 2).hex().encode()
        per_s = day.rate_mb * MB / day.value_bytes
        start = time.monotonic()
        sent, next_sample, now = 0, 0.0, 0.0
        while now < day.seconds:
            while sent < per_s * now:
                try:
                    producer.produce(TOPIC, value=value, partition=sent % PARTITIONS)
                except BufferError:  # the broker is behind: the rate says so
                    break
                sent += 1
            producer.poll(0)
            if now >= next_sample:
                samples.append({"t_s": round(now, 1), **bucket(data / "objects")})
                next_sample += day.sample_s
            time.sleep(0.01)
            now = time.monotonic() - start
        if producer.flush(60) != 0:
            raise RuntimeError("the day's records were not acknowledged")
        elapsed = time.monotonic() - start
        del producer  # gone before its broker: no reconnect noise on stderr
    finally:
        broker.stop(STOP_TIMEOUT_S)
    return {
        "settings": {
            **asdict(day),
            "retention_ms": day.retention_ms,
            "segment_ms": day.segment_ms,
            "broker_args": list(DAY_ARGS),
        },
        "produced_mb": sent * day.value_bytes / MB,
        "produced_mb_s": sent * day.value_bytes / MB / elapsed,
        "samples": samples,
        "halves": halves(samples, day.seconds),
    }

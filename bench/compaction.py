"""What compaction and retention do to a topic's cost (issue 14): how fast the cleaner
goes, how much faster a compacted changelog restores, and that a topic with retention
holds a flat amount of the bucket. Owns sections 1 and 2, the report and the command;
section 3 is bench/retention_day.py. Every figure is read from the run (the broker's log,
its consumers, its store dir); nothing is asserted.

One tidelog broker (embedded default: wal mode, a file:// store in its data dir, log at
info so its lifecycle lines can be read) with `--log-cleaner-backoff-ms 100` serves
sections 1 and 2; a second, fresh one serves section 3.

1. Compaction throughput, --rounds times, each on a fresh topic (6 partitions): filled
   with --mb MB of keyed records (--keys keys, each with many versions, --value-bytes
   values) while `min.compaction.lag.ms` holds the cleaner off. Then
   IncrementalAlterConfigs sets `segment.ms=1`, `min.cleanable.dirty.ratio=0.01` and
   `min.compaction.lag.ms=0`; once the broker logged the roll of every partition's
   data, one newer record per partition makes that data no longer the newest (the
   newest segment is never cleaned, docs/compaction.md). Cleaning seconds come from the
   broker's own log: per partition from the newer record's roll (the line just before
   that partition's compaction starts, in the same pass) to its last `compacted` line,
   summed; input MB is the `bytes_before` of those lines. The wall time from the newer
   records' ack to the last `compacted` line seen is printed beside it (it adds up to
   one backoff and one flush interval). Also `build_offset_map` + `clean_segments` in
   this process over --inprocess-mb MB of segments built the same way: the pure
   cleaner's CPU, without reads, writes or commits.
2. Restore of a changelog of --changelog-keys keys x --updates updates: --reads fresh
   consumers one after the other, each timed from its constructor (end offsets, assign,
   read to the high watermarks) and from assign(), before compaction; then compacted as
   in 1; then the same reads again.
3. The bucket under retention over a day scaled to --day-s seconds (bench/retention_day.py).

    python bench/compaction.py                    # 3 x 300 MB, 100,000-record changelog, 144 s day
    python bench/compaction.py --quick            # tiny sizes, 24 s day: smoke
    python bench/compaction.py --json compaction.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

if __package__ in (None, ""):  # run as `python bench/compaction.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import PARTITIONS, ROOT, STOP_TIMEOUT_S, create_topic
from tidelog.bench.retention_day import Day, retention_day
from tidelog.bench.throughput import MB, PRODUCER_SETTINGS
from tidelog.broker.processes import BrokerProcess
from tidelog.protocol.records import Record, build_batch
from tidelog.storage.compaction import build_offset_map, clean_segments

CLEANER_BACKOFF_MS = 100
WAIT_S = 600.0  # for the broker to roll or compact; a bench that hangs says so
DAY_MS = 86_400_000
HOLD = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(DAY_MS)}
RELEASE = {"segment.ms": "1", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}
NEWER_KEY = b"bench-newer"
RECORDS_PER_BATCH = 1000  # about what librdkafka packs into a 1 MiB batch of 1 KiB values
INPROCESS_SEGMENT_BYTES = 32 << 20
INPROCESS_REPEATS = 3
# option: (default, --quick); the defaults run in about three minutes
DEFAULTS: dict[str, tuple[float, float]] = {
    "mb": (300, 8),
    "rounds": (3, 1),
    "keys": (1000, 100),
    "changelog_keys": (1000, 100),
    "updates": (100, 10),
    "reads": (5, 2),
    "inprocess_mb": (50, 4),
    "day_s": (144, 24),
    "sample_s": (4, 2),
}
LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?(segment rolled|compacted) topic=(\S+) "
    r"partition=(\d+) base=(\d+) end=(\d+) (?:bytes=(\d+)|bytes_before=(\d+) bytes_after=(\d+))"
)


@dataclass(frozen=True)
class LogEvent:
    """A `segment rolled` or `compacted` line of the broker's log."""

    at: float  # the line's timestamp, seconds since the epoch
    kind: str
    topic: str
    partition: int
    base: int
    end: int
    bytes_before: int
    bytes_after: int


class BrokerLog:
    """The lifecycle lines of one broker's log, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[LogEvent] = []
        self._at = 0

    def poll(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self._at)
            data = f.read()
        upto = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
        self._at += upto
        for line in data[:upto].decode(errors="replace").splitlines():
            m = LINE.match(line)
            if m is None:
                continue
            at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            rolled = m[2] == "segment rolled"
            before = int(m[7] if rolled else m[8])
            after = before if rolled else int(m[9])
            self.events.append(
                LogEvent(at, m[2], m[3], int(m[4]), int(m[5]), int(m[6]), before, after)
            )

    def of(self, kind: str, topic: str) -> list[LogEvent]:
        return [e for e in self.events if e.kind == kind and e.topic == topic]


def wait_until(what: str, condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)


def _producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS})


def _values(value_bytes: int) -> Iterator[bytes]:
    """Distinct incompressible-looking values: slices of one random buffer."""
    pool = os.urandom(value_bytes * 64).hex().encode()
    step = 7919 % (len(pool) - value_bytes)
    at = 0
    while True:
        yield pool[at : at + value_bytes]
        at = (at + step) % (len(pool) - value_bytes)


def produce_keyed(bootstrap: str, topic: str, count: int, keys: int, value_bytes: int) -> float:
    """Seconds to produce `count` records, key i % keys, acknowledged."""
    producer = _producer(bootstrap)
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    values = _values(value_bytes)
    start = time.perf_counter()
    for i in range(count):
        key = b"key-%06d" % (i % keys)
        while True:
            try:
                producer.produce(topic, key=key, value=next(values), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.001)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0 or failures:
        raise RuntimeError(f"produce failed: {failures[:3]}")
    return time.perf_counter() - start


def alter(admin: AdminClient, topic: str, configs: dict[str, str]) -> None:
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
               for k, v in configs.items()]  # fmt: skip
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def high_watermarks(consumer: Consumer, topic: str, partitions: int) -> dict[int, int]:
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(partitions)}  # fmt: skip


def compact(bootstrap: str, log: BrokerLog, topic: str, ends: dict[int, int]) -> dict[str, Any]:
    """Let the broker compact `topic` (filled up to `ends`, held off by HOLD); its figures."""
    alter(AdminClient({"bootstrap.servers": bootstrap}), topic, RELEASE)
    filled = {p: end for p, end in ends.items() if end > 0}

    def reached(kind: str) -> bool:
        log.poll()
        done = {e.partition for e in log.of(kind, topic) if e.end >= filled[e.partition]}
        return done >= filled.keys()

    wait_until(f"the rolls of topic={topic}", lambda: reached("segment rolled"))
    producer = _producer(bootstrap)
    for p in filled:  # newer data: the rolled segments are no longer the newest
        producer.produce(topic, key=NEWER_KEY, value=b"newer", partition=p)
    if producer.flush(60) != 0:
        raise RuntimeError("the newer records were not acknowledged")
    acked = time.time()
    wait_until(f"the compaction of topic={topic}", lambda: reached("compacted"))
    seen = time.time()
    cleaning_s, before, after = 0.0, 0, 0
    for p, end in filled.items():
        lines = [e for e in log.of("compacted", topic) if e.partition == p and e.end <= end]
        rolls = [e for e in log.of("segment rolled", topic) if e.partition == p and e.base >= end]
        if not rolls:
            raise RuntimeError(f"no roll of the newer record topic={topic} partition={p}")
        cleaning_s += max(e.at for e in lines) - rolls[0].at
        before += sum(e.bytes_before for e in lines)
        after += sum(e.bytes_after for e in lines)
    return {
        "input_mb": before / MB,
        "output_mb": after / MB,
        "cleaning_s": cleaning_s,
        "mb_s": before / MB / cleaning_s if cleaning_s > 0 else None,
        "wall_s": seen - acked,
        "wall_mb_s": before / MB / (seen - acked) if seen > acked else None,
    }


def restore(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> dict[str, Any]:
    """A fresh consumer reads `topic` from the beginning to its high watermarks: seconds
    from its constructor (as an app restoring its state pays them), and from assign()."""
    start = time.perf_counter()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-restore-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 << 20,  # as bench/throughput.py's consumer
            "max.partition.fetch.bytes": 8 << 20,
            "fetch.queue.backoff.ms": 10,  # docs/benchmarks.md, "Client settings"
            "log.connection.close": False,
        }
    )
    try:
        ends = high_watermarks(consumer, topic, partitions)
        tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
        assigned = time.perf_counter()
        consumer.assign(tps)
        records, keys = 0, set()

        def at_end() -> bool:
            return all(tp.offset >= ends[tp.partition] for tp in consumer.position(tps)
                       if ends[tp.partition] > 0)  # fmt: skip

        deadline = time.monotonic() + WAIT_S
        while not at_end():
            if time.monotonic() > deadline:
                raise RuntimeError(f"restore of topic={topic} did not reach {ends}")
            # a short timeout: consume() waits it out when fewer records are left
            for msg in consumer.consume(10000, 0.01):
                if msg.error():
                    raise KafkaException(msg.error())
                records += 1
                keys.add(msg.key())
        done = time.perf_counter()
    finally:
        consumer.close()
    return {
        "records": records,
        "keys": len(keys),
        "seconds": done - start,
        "read_s": done - assigned,
    }


def inprocess(mb: int, keys: int, value_bytes: int) -> dict[str, Any]:
    """`build_offset_map` + `clean_segments` in this process over ~`mb` MB of segments."""
    values = _values(value_bytes)
    segments: list[bytes] = []
    parts: list[bytes] = []
    size = offset = 0
    now = int(time.time() * 1000)
    while offset * value_bytes < mb * MB:
        records = [Record(offset + i, now, b"key-%06d" % ((offset + i) % keys), next(values))
                   for i in range(RECORDS_PER_BATCH)]  # fmt: skip
        parts.append(build_batch(records, base_offset=offset))
        size += len(parts[-1])
        offset += RECORDS_PER_BATCH
        if size >= INPROCESS_SEGMENT_BYTES:
            segments.append(b"".join(parts))
            parts, size = [], 0
    if parts:
        segments.append(b"".join(parts))
    seconds, cpu = [], []
    for _ in range(INPROCESS_REPEATS):
        wall_at, cpu_at = time.perf_counter(), time.process_time()
        offset_map = build_offset_map(segments)
        result = clean_segments(segments, offset_map, now_ms=now, delete_retention_ms=DAY_MS)
        seconds.append(time.perf_counter() - wall_at)
        cpu.append(time.process_time() - cpu_at)
    stats = result.stats
    return {
        "input_mb": stats.bytes_before / MB,
        "output_mb": stats.bytes_after / MB,
        "records_removed": stats.records_removed,
        "seconds": seconds,
        "cpu_s": statistics.median(cpu),
        "mb_s": stats.bytes_before / MB / statistics.median(seconds),
    }


def fill(bootstrap: str, topic: str, records: int, keys: int, value_bytes: int) -> dict[int, int]:
    """A compacted topic, held off cleaning, with `records` keyed records; its ends."""
    create_topic(bootstrap, topic, config=HOLD)
    produce_keyed(bootstrap, topic, records, keys, value_bytes)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-ends"})
    try:
        return high_watermarks(consumer, topic, PARTITIONS)
    finally:
        consumer.close()


def median_range(values: list[float | None]) -> dict[str, float] | None:
    """Median, min and max of the values there are (None: a round too short to time)."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"median": statistics.median(known), "min": min(known), "max": max(known)}


def restores(bootstrap: str, topic: str, reads: int) -> dict[str, Any]:
    """`reads` fresh consumers, one after the other; the counts and the median times."""
    runs = [restore(bootstrap, topic) for _ in range(reads)]
    return {
        "records": runs[-1]["records"],
        "keys": runs[-1]["keys"],
        "seconds": median_range([r["seconds"] for r in runs]),
        "read_s": median_range([r["read_s"] for r in runs]),
        "runs": runs,
    }


def run_compaction(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Sections 1 and 2 on one broker."""
    log_path = workdir / "broker.log"
    broker = BrokerProcess(
        workdir / "broker",
        log_level="info",
        args=["--log-cleaner-backoff-ms", str(CLEANER_BACKOFF_MS)],
        log_path=log_path,
        cwd=ROOT,
    )
    broker.start()
    try:
        log = BrokerLog(log_path)
        records = args.mb * MB // args.value_bytes
        rounds = []
        for r in range(args.rounds):
            topic = f"throughput-{r}"
            ends = fill(broker.bootstrap, topic, records, args.keys, args.value_bytes)
            rounds.append(compact(broker.bootstrap, log, topic, ends))
            print(f"1. round {r + 1}: {records} records compacted", flush=True)
        records = args.changelog_keys * args.updates
        ends = fill(broker.bootstrap, "changelog", records, args.changelog_keys, args.value_bytes)
        before = restores(broker.bootstrap, "changelog", args.reads)
        cleaned = compact(broker.bootstrap, log, "changelog", ends)
        after = restores(broker.bootstrap, "changelog", args.reads)
        print("2. changelog restored before and after compaction", flush=True)
    finally:
        broker.stop(STOP_TIMEOUT_S)
    throughput = {
        "records": args.mb * MB // args.value_bytes,
        "mb_s": median_range([r["mb_s"] for r in rounds]),
        "wall_mb_s": median_range([r["wall_mb_s"] for r in rounds]),
        "rounds": rounds,
    }
    changelog = {"records": records, "before": before, "compaction": cleaned, "after": after}
    return {"throughput": throughput, "changelog": changelog}


def _n(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _range(r: dict[str, float] | None, fmt: str = ".1f") -> str:
    if r is None:
        return "n/a"
    return f"{r['median']:{fmt}} ({r['min']:{fmt}}-{r['max']:{fmt}})"


def report(doc: dict[str, Any]) -> None:
    t, inp = doc["throughput"], doc["inprocess"]
    print("\n| compaction | input MB | output MB | cleaning s | wall s | MB/s | wall MB/s |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(t["rounds"]):
        print(f"| broker round {i + 1} | {r['input_mb']:.1f} | {r['output_mb']:.2f} | "
              f"{r['cleaning_s']:.2f} | {r['wall_s']:.2f} | {_n(r['mb_s'])} | "
              f"{_n(r['wall_mb_s'])} |")  # fmt: skip
    print(f"| in-process clean_segments, median of {len(inp['seconds'])} | "
          f"{inp['input_mb']:.1f} | {inp['output_mb']:.2f} | {inp['cpu_s']:.2f} (cpu) | "
          f"{statistics.median(inp['seconds']):.2f} | {inp['mb_s']:.1f} | - |")  # fmt: skip
    print(f"compaction MB/s of input, broker median (min-max): {_range(t['mb_s'])}; "
          f"wall {_range(t['wall_mb_s'])}; in-process {inp['mb_s']:.1f}")  # fmt: skip
    c = doc["changelog"]
    b, a = c["before"], c["after"]
    print(f"\n| changelog restore ({c['records']} records written), median (min-max) of "
          f"{len(b['runs'])} | records read | keys | seconds | assign -> end s |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, r in (("before", b), ("after", a)):
        print(f"| {name} compaction | {r['records']} | {r['keys']} | "
              f"{_range(r['seconds'], '.3f')} | {_range(r['read_s'], '.3f')} |")  # fmt: skip
    print(f"restore before/after: {b['seconds']['median'] / a['seconds']['median']:.1f}x time, "
          f"{b['read_s']['median'] / a['read_s']['median']:.1f}x assign -> end, "
          f"{b['records'] / max(a['records'], 1):.1f}x records")  # fmt: skip
    d = doc["retention"]
    s = d["settings"]
    print(f"\nbucket under retention: {s['seconds']:.0f} s day, retention.ms={s['retention_ms']}, "
          f"segment.ms={s['segment_ms']}, {d['produced_mb']:.1f} MB produced "
          f"({d['produced_mb_s']:.2f} MB/s)")  # fmt: skip
    print("| t s | objects | MB | segments | segments MB | streams | streams MB |")
    print("|---|---|---|---|---|---|---|")
    for x in d["samples"]:
        print(f"| {x['t_s']:.0f} | {x['objects']} | {x['bytes'] / MB:.1f} | {x['segments']} | "
              f"{x['segments_bytes'] / MB:.1f} | {x['streams']} | "
              f"{x['streams_bytes'] / MB:.1f} |")  # fmt: skip
    h = d["halves"]
    if "first" in h and "second" in h:
        f, g = h["first"], h["second"]
        print(f"after the fill (t >= {s['seconds'] / 3:.0f} s), mean of first half vs second "
              f"half: objects {f['objects']:.0f} vs {g['objects']:.0f} "
              f"({g['objects'] / f['objects']:.2f}x), MB {f['bytes'] / MB:.1f} vs "
              f"{g['bytes'] / MB:.1f} ({g['bytes'] / f['bytes']:.2f}x)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--mb", type=int, help="MB filled per round of section 1 (300; quick 8)")
    parser.add_argument("--rounds", type=int, help="rounds of section 1 (3; quick 1)")
    parser.add_argument("--keys", type=int, help="keys of section 1 (1000; quick 100)")
    parser.add_argument("--value-bytes", type=int, default=1024, help="value size (1024)")
    parser.add_argument("--changelog-keys", type=int, help="changelog keys (1000; quick 100)")
    parser.add_argument("--updates", type=int, help="updates per changelog key (100; quick 10)")
    parser.add_argument("--reads", type=int, help="restores before and after (5; quick 2)")
    parser.add_argument("--inprocess-mb", type=int, help="MB cleaned in-process (50; quick 4)")
    parser.add_argument("--day-s", type=float, help="seconds standing for a day (144; quick 24)")
    parser.add_argument("--sample-s", type=float, help="bucket sample interval (4; quick 2)")
    parser.add_argument("--rate-mb", type=float, default=2.0, help="MB/s produced in the day")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    sizes = (args.mb, args.rounds, args.keys, args.changelog_keys, args.updates, args.reads)
    if min(*sizes, args.inprocess_mb) < 1:
        parser.error("sizes must be positive")
    print(f"tidelog, one broker (wal mode, file:// store), --log-cleaner-backoff-ms "
          f"{CLEANER_BACKOFF_MS}, {PARTITIONS} partitions")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-compaction-") as tmp:
        doc = run_compaction(Path(tmp), args)
        doc["inprocess"] = inprocess(args.inprocess_mb, args.keys, args.value_bytes)
        day = Day(args.day_s, args.sample_s, args.rate_mb, args.value_bytes)
        print(f"3. a day of {day.seconds:.0f} s at {day.rate_mb} MB/s", flush=True)
        doc["retention"] = retention_day(Path(tmp), day)
    report(doc)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Consumer-group latency, tidelog side by side with the peer broker Tansu 0.6.

Two figures, both with confluent-kafka (librdkafka) on its default group settings
(eager range/roundrobin assignor, 3 s heartbeat, 45 s session timeout):

* subscribe -> first record: a fresh consumer in a new group subscribes to a pre-filled
  6-partition topic; the clock runs from `subscribe()` until `poll()` returns a record.
* rebalance after a leave: three members of one group share a 6-partition topic; once
  each owns its share, one is closed; the clock runs from the `close()` call until the
  remaining two own all 6 partitions between them (seen in their assign callbacks).
  The remaining members only learn of the rebalance from a heartbeat answer, and the
  close comes right after the group formed, so this figure includes up to one
  heartbeat interval (--heartbeat-ms, 3 s by default) of client-side waiting.

Each round starts every broker afresh (alternating the order, so machine drift hits
both) and takes one sample of each figure. A measurement that does not finish within
--timeout seconds is recorded as timed out, never retried. Prints median (min-max) per
broker and the tidelog/peer ratio of the medians (below 1 is faster).

    python bench/groups.py --rounds 3
    python bench/groups.py --no-peer --json groups.json

Figures only: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

if __package__ in (None, ""):  # run as `python bench/groups.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import PARTITIONS, create_topic, run_broker

FILL_RECORDS = 600
MEMBERS = 3
SUBSCRIBE = "subscribe -> first record"
REBALANCE = f"{MEMBERS}-member rebalance after a leave"
FIGURES = (SUBSCRIBE, REBALANCE)


class SetupTimeout(Exception):
    """The group never reached the state a measurement starts from."""


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    timeouts: int = 0

    def add(self, value: float | None) -> None:
        if value is None:
            self.timeouts += 1
        else:
            self.seconds.append(value)

    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


HEARTBEAT_MS = 3000  # librdkafka's default heartbeat.interval.ms


@dataclass(frozen=True)
class Settings:
    timeout: float  # seconds allowed per measurement (and for forming the group)
    heartbeat_ms: int


def consumer_config(bootstrap: str, group: str, settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "heartbeat.interval.ms": settings.heartbeat_ms,
    }


def fill(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(FILL_RECORDS):
        producer.produce(topic, value=b"x" * 100, partition=i % PARTITIONS)
    if producer.flush(60) != 0:
        raise RuntimeError("pre-fill did not finish in 60 s")


def subscribe_to_first_record(bootstrap: str, topic: str, settings: Settings) -> float | None:
    """Seconds from subscribe() to the first record poll() hands back; None on timeout."""
    consumer = Consumer(consumer_config(bootstrap, f"first-{uuid.uuid4().hex[:8]}", settings))
    try:
        start = time.perf_counter()
        consumer.subscribe([topic])
        while time.perf_counter() - start < settings.timeout:
            msg = consumer.poll(0.05)
            if msg is not None and msg.error() is None:
                return time.perf_counter() - start
        return None
    finally:
        consumer.close()


class Member:
    """One group member and the partitions its rebalance callbacks say it owns."""

    def __init__(self, bootstrap: str, group: str, topic: str, settings: Settings) -> None:
        self.owned: set[int] = set()
        self.consumer = Consumer(consumer_config(bootstrap, group, settings))
        self.consumer.subscribe(
            [topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _assigned(self, _consumer: Any, partitions: list[Any]) -> None:
        self.owned = {tp.partition for tp in partitions}

    def _revoked(self, _consumer: Any, partitions: list[Any]) -> None:
        self.owned -= {tp.partition for tp in partitions}

    def poll(self) -> None:
        self.consumer.poll(0.01)


def _all_owned_by(members: list[Member]) -> bool:
    sizes = [len(m.owned) for m in members]
    owned = set().union(*(m.owned for m in members))
    return all(sizes) and sum(sizes) == PARTITIONS and owned == set(range(PARTITIONS))


def _poll_until_owned(members: list[Member], timeout: float, start: float) -> float | None:
    while time.perf_counter() - start < timeout:
        for m in members:
            m.poll()
        if _all_owned_by(members):
            return time.perf_counter() - start
    return None


def rebalance_after_leave(bootstrap: str, topic: str, settings: Settings) -> float | None:
    """Seconds from one member's close() until the other two own every partition."""
    group = f"rebalance-{uuid.uuid4().hex[:8]}"
    members = [Member(bootstrap, group, topic, settings) for _ in range(MEMBERS)]
    timeout = settings.timeout
    try:
        if _poll_until_owned(members, timeout, time.perf_counter()) is None:
            raise SetupTimeout(f"{MEMBERS} members did not share the topic in {timeout:g} s")
        leaver, *rest = members
        start = time.perf_counter()
        leaver.consumer.close()
        members = rest
        return _poll_until_owned(rest, timeout, start)
    finally:
        for m in members:
            m.consumer.close()


def one_round(kind: str, workdir: Path, settings: Settings, results: dict[str, Samples]) -> None:
    with run_broker(kind, workdir, None) as (bootstrap, _):
        filled, empty = (f"groups-{name}-{uuid.uuid4().hex[:6]}" for name in ("fill", "lb"))
        create_topic(bootstrap, filled)
        create_topic(bootstrap, empty)
        fill(bootstrap, filled)
        first = subscribe_to_first_record(bootstrap, filled, settings)
        results[SUBSCRIBE].add(first)
        try:
            rebalance = rebalance_after_leave(bootstrap, empty, settings)
            note = ""
        except SetupTimeout as exc:
            rebalance, note = None, f" ({exc})"
        results[REBALANCE].add(rebalance)
        print(
            f"  {kind:8s} {SUBSCRIBE} {_seconds(first, settings.timeout)}   "
            f"rebalance {_seconds(rebalance, settings.timeout)}{note}",
            flush=True,
        )


def _seconds(value: float | None, timeout: float) -> str:
    return f"timed out after {timeout:g} s" if value is None else f"{value:6.3f} s"


def _cell(samples: Samples, timeout: float) -> str:
    median = samples.median()
    if median is None:
        return f"timed out after {timeout:g} s ({samples.timeouts}/{samples.timeouts})"
    text = f"{median:.3f} s ({min(samples.seconds):.3f}-{max(samples.seconds):.3f})"
    if samples.timeouts:
        total = samples.timeouts + len(samples.seconds)
        text += f", {samples.timeouts}/{total} timed out after {timeout:g} s"
    return text


def _ratio(ours: Samples, peer: Samples) -> str:
    a, b = ours.median(), peer.median()
    if a is None or b is None:
        return "n/a"
    return f"{a / b:.3f}x"


def print_table(results: dict[str, dict[str, Samples]], timeout: float) -> None:
    kinds = list(results)
    header = ["", *(f"{k}: median (min-max)" for k in kinds)]
    if len(kinds) == 2:
        header.append(f"{kinds[0]}/{kinds[1]}")
    rows = [header]
    for fig in FIGURES:
        row = [fig, *(_cell(results[k][fig], timeout) for k in kinds)]
        if len(kinds) == 2:
            row.append(_ratio(results[kinds[0]][fig], results[kinds[1]][fig]))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def summary(results: dict[str, dict[str, Samples]]) -> dict[str, Any]:
    return {
        kind: {
            fig: {
                "median_s": s.median(),
                "min_s": min(s.seconds, default=None),
                "max_s": max(s.seconds, default=None),
                "samples_s": s.seconds,
                "timeouts": s.timeouts,
            }
            for fig, s in figs.items()
        }
        for kind, figs in results.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="skip Tansu")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds allowed per measurement"
    )
    parser.add_argument(
        "--heartbeat-ms", type=int, default=HEARTBEAT_MS, help="heartbeat.interval.ms"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    settings = Settings(args.timeout, args.heartbeat_ms)
    kinds = ["tidelog"] if args.no_peer else ["tidelog", "tansu"]
    results = {k: {fig: Samples() for fig in FIGURES} for k in kinds}
    print("tidelog: embedded default (wal + local dir); tansu: memory engine")
    print(
        f"confluent-kafka defaults, heartbeat.interval.ms={settings.heartbeat_ms};"
        f" {PARTITIONS} partitions; {FILL_RECORDS} records pre-filled;"
        f" {settings.timeout:g} s allowed per measurement"
    )
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-groups-") as tmp:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}")
            for kind in kinds if r % 2 == 0 else list(reversed(kinds)):
                one_round(kind, Path(tmp), settings, results[kind])
    print()
    print_table(results, args.timeout)
    if args.json:
        args.json.write_text(json.dumps(summary(results), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

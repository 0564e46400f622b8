"""Transactional produce, tidelog side by side with the peer broker Tansu 0.6 (issue 13).

Each round starts every broker afresh (alternating the order, so machine drift hits
both) and drives it with confluent-kafka (librdkafka), the same settings for every run
(acks=all, linger 5 ms, 1 MiB batches, 6 partitions), in two ways, their order also
swapped every round:

* transactional: one producer with a `transactional.id`; for --seconds it repeats
  begin_transaction(), produce() as fast as it can for --commit-ms (100 ms), flush(),
  commit_transaction(). MB/s and records/s of committed records, from the first
  begin to the last commit's return; the latency of commit_transaction() alone (after
  the flush, so it is the EndTxn round trip, not the draining of the batch), and of
  flush + commit (the whole end of a transaction);
* idempotent: one producer with enable.idempotence=true and no transactional id,
  producing as fast as it can for --seconds, then flush(): MB/s and records/s.

Both follow one second of the same work that is not counted. Prints, per broker, the
medians over the rounds (min-max), commit p50/p99 over every commit of every round, the
transactional/idempotent ratio, and the tidelog/Tansu ratios of the medians. A broker
that refuses transactions gets one line saying so and n/a for those figures; the rest
still runs and the exit code is 1.

Targets of issue 13, printed beside the figures, never asserted: tidelog transactional
>= 0.8x its idempotent throughput; commit_transaction() p99 <= 50 ms in wal mode.

    python bench/transactions.py                        # tidelog wal vs Tansu memory
    python bench/transactions.py --durability object --seconds 20 --rounds 5
    python bench/transactions.py --no-peer --json transactions.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

if __package__ in (None, ""):  # run as `python bench/transactions.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import PARTITIONS, create_topic, run_broker

MB = 1_000_000
WARMUP_S = 1.0
INIT_TIMEOUT_S = 20.0  # init_transactions(): a broker without transactions times out here
END_TIMEOUT_S = 120.0  # flush() and commit_transaction() of one transaction
TXN_RATIO_TARGET = 0.8
COMMIT_P99_TARGET_MS = 50.0
MODES = ("transactional", "idempotent")
# what this benchmark's transactional producer calls, beside InitProducerId and
# FindCoordinator (both there for idempotence and groups too)
TXN_APIS = {24: "AddPartitionsToTxn", 26: "EndTxn"}
# ApiVersions v0: size, api_key 18, version 0, correlation id 1, null client id; no body
_API_VERSIONS_V0 = struct.pack(">ihhih", 10, 18, 0, 1, -1)


class TxnRefused(Exception):
    """The broker refused (or never answered) a transactional step; one line, no trace."""


@dataclass
class Settings:
    seconds: float
    commit_s: float
    record_bytes: int


@dataclass
class Samples:
    """One broker's figures over the rounds."""

    mb_s: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    records_s: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    commit_ms: list[float] = field(default_factory=list)  # commit_transaction() alone
    end_ms: list[float] = field(default_factory=list)  # flush() + commit_transaction()
    refused: str | None = None


@dataclass
class Produced:
    records: int
    elapsed_s: float
    commit_ms: list[float] = field(default_factory=list)
    end_ms: list[float] = field(default_factory=list)


class Deliveries:
    """Counts acknowledged records and keeps the first delivery errors."""

    def __init__(self) -> None:
        self.acked = 0
        self.failures: list[str] = []

    def __call__(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.acked += 1
        elif len(self.failures) < 10:
            self.failures.append(str(err))

    def check(self, expected: int) -> None:
        if self.failures:
            raise RuntimeError(f"deliveries failed, first: {self.failures[0]}")
        if self.acked != expected:
            raise RuntimeError(f"acknowledged {self.acked} of {expected} records")


def producer_config(bootstrap: str, transactional_id: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1 << 20,
        "queue.buffering.max.kbytes": 1 << 20,
        "enable.idempotence": True,
        "log.connection.close": False,
    }
    if transactional_id is not None:
        config["transactional.id"] = transactional_id
    return config


def produce_for(
    producer: Any, topic: str, value: bytes, seconds: float, on_delivery: Deliveries
) -> int:
    """produce() as fast as the client takes records for `seconds`; records handed over."""
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        try:
            producer.produce(
                topic, value=value, partition=count % PARTITIONS, on_delivery=on_delivery
            )
        except BufferError:  # the client's queue is full: serve callbacks, try again
            producer.poll(0.001)
            continue
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    return count


def _flush(producer: Any) -> None:
    if producer.flush(END_TIMEOUT_S) != 0:
        raise RuntimeError(f"produce did not finish in {END_TIMEOUT_S:g} s")


def _closed(producer: Any) -> None:
    """Drop what is queued and close, before the broker stops (no reconnect noise). After
    a failed init_transactions() close() warns that it cannot abort: nothing to abort."""
    producer.purge()
    close = getattr(producer, "close", None)  # confluent-kafka 2.13+ only
    if close is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            close()


def missing_txn_apis(bootstrap: str) -> list[str]:
    """The transaction APIs the broker's ApiVersions (v0) answer leaves out."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(_API_VERSIONS_V0)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        body = _read_exactly(sock, size)
    _correlation, error, count = struct.unpack_from(">ihi", body)
    if error != 0:
        raise RuntimeError(f"ApiVersions error_code={error} bootstrap={bootstrap}")
    keys = {struct.unpack_from(">h", body, 10 + 6 * i)[0] for i in range(count)}
    return [name for key, name in TXN_APIS.items() if key not in keys]


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, have = [], 0
    while have < n:
        chunk = sock.recv(n - have)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def idempotent(bootstrap: str, topic: str, settings: Settings) -> Produced:
    value = os.urandom(settings.record_bytes // 2 + 1).hex().encode()[: settings.record_bytes]
    producer = Producer(producer_config(bootstrap, None))
    try:
        warm = Deliveries()
        produce_for(producer, topic, value, WARMUP_S, warm)
        _flush(producer)
        counted = Deliveries()
        start = time.perf_counter()
        records = produce_for(producer, topic, value, settings.seconds, counted)
        _flush(producer)
        elapsed = time.perf_counter() - start
        counted.check(records)
        return Produced(records, elapsed)
    finally:
        _closed(producer)


def _txn_step(name: str, step: Callable[[], Any]) -> None:
    try:
        step()
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        text = f"{err.str()} ({err.name()})" if isinstance(err, KafkaError) else str(err)
        raise TxnRefused(f"{name} failed: {text}") from None


def transactional(bootstrap: str, topic: str, settings: Settings) -> Produced:
    value = os.urandom(settings.record_bytes // 2 + 1).hex().encode()[: settings.record_bytes]
    producer = Producer(producer_config(bootstrap, f"bench-txn-{uuid.uuid4().hex[:8]}"))
    try:
        missing = missing_txn_apis(bootstrap)
        if missing:
            raise TxnRefused(f"its ApiVersions answer has no {', '.join(missing)}")
        _txn_step("init_transactions()", lambda: producer.init_transactions(INIT_TIMEOUT_S))

        def one_transaction(out: Produced) -> None:
            delivered = Deliveries()
            _txn_step("begin_transaction()", producer.begin_transaction)
            records = produce_for(producer, topic, value, settings.commit_s, delivered)
            flush_start = time.perf_counter()
            _flush(producer)
            commit_start = time.perf_counter()
            _txn_step("commit_transaction()", lambda: producer.commit_transaction(END_TIMEOUT_S))
            done = time.perf_counter()
            delivered.check(records)
            out.records += records
            out.commit_ms.append((done - commit_start) * 1000)
            out.end_ms.append((done - flush_start) * 1000)

        warm, warm_start = Produced(0, 0.0), time.perf_counter()
        while time.perf_counter() - warm_start < WARMUP_S:
            one_transaction(warm)
        out = Produced(0, 0.0)
        start = time.perf_counter()
        while time.perf_counter() - start < settings.seconds:
            one_transaction(out)
        out.elapsed_s = time.perf_counter() - start
        return out
    finally:
        _closed(producer)


def one_round(
    kind: str, workdir: Path, extra: tuple[str, ...], settings: Settings, samples: Samples, r: int
) -> None:
    with run_broker(kind, workdir, None, extra_args=extra if kind == "tidelog" else ()) as (
        bootstrap,
        _,
    ):
        shown: dict[str, str] = {}
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            if mode == "transactional" and samples.refused is not None:
                shown[mode] = "refused"
                continue
            topic = f"bench-{mode[:3]}-{uuid.uuid4().hex[:6]}"
            create_topic(bootstrap, topic)
            try:
                run = (transactional if mode == "transactional" else idempotent)(
                    bootstrap, topic, settings
                )
            except TxnRefused as exc:
                samples.refused = str(exc)
                print(f"  {kind} refused transactions: {exc}", flush=True)
                shown[mode] = "refused"
                continue
            mb_s = run.records * settings.record_bytes / MB / run.elapsed_s
            samples.mb_s[mode].append(mb_s)
            samples.records_s[mode].append(run.records / run.elapsed_s)
            samples.commit_ms.extend(run.commit_ms)
            samples.end_ms.extend(run.end_ms)
            shown[mode] = f"{mb_s:7.1f} MB/s"
            if run.commit_ms:
                shown[mode] += (
                    f" ({len(run.commit_ms)} commits, commit p50 "
                    f"{percentile(run.commit_ms, 0.5):.1f} p99 "
                    f"{percentile(run.commit_ms, 0.99):.1f} ms)"
                )
        print(f"  {kind:8s} " + "   ".join(f"{m} {shown[m]}" for m in MODES), flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    if not values:
        return "n/a"
    m = statistics.median(values) * scale
    return f"{m:,.1f} {unit} ({min(values) * scale:,.1f}-{max(values) * scale:,.1f})"


def summary(results: dict[str, Samples]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for kind, s in results.items():
        doc[kind] = {
            **{f"{m}_mb_s": _median(s.mb_s[m]) for m in MODES},
            **{f"{m}_records_s": _median(s.records_s[m]) for m in MODES},
            "transactional_over_idempotent": _ratio(
                _median(s.mb_s["transactional"]), _median(s.mb_s["idempotent"])
            ),
            "commits": len(s.commit_ms),
            "commit_p50_ms": percentile(s.commit_ms, 0.5) if s.commit_ms else None,
            "commit_p99_ms": percentile(s.commit_ms, 0.99) if s.commit_ms else None,
            "flush_commit_p50_ms": percentile(s.end_ms, 0.5) if s.end_ms else None,
            "flush_commit_p99_ms": percentile(s.end_ms, 0.99) if s.end_ms else None,
            "rounds": {"mb_s": s.mb_s, "records_s": s.records_s},
            "refused": s.refused,
        }
    if "tansu" in doc:
        t, p = doc["tidelog"], doc["tansu"]
        doc["ratio"] = {m: _ratio(t[f"{m}_mb_s"], p[f"{m}_mb_s"]) for m in MODES}
    return doc


def print_summary(results: dict[str, Samples], doc: dict[str, Any], durability: str) -> None:
    print("\nmedian over rounds (min-max); commit percentiles over every commit of every round:")
    for kind, s in results.items():
        d = doc[kind]
        print(f"  {kind}")
        for m in MODES:
            print(
                f"    {m:14s} {_spread(s.mb_s[m], 'MB/s'):28s} "
                f"{_spread(s.records_s[m], 'records/s')}"
            )
        if s.refused is not None:
            print(f"    transactions refused: {s.refused}")
        print(f"    transactional/idempotent {_x(d['transactional_over_idempotent'])}")
        if s.commit_ms:
            print(
                f"    commit_transaction() p50 {d['commit_p50_ms']:.1f} ms  p99 "
                f"{d['commit_p99_ms']:.1f} ms;  flush + commit p50 "
                f"{d['flush_commit_p50_ms']:.1f} ms  p99 {d['flush_commit_p99_ms']:.1f} ms  "
                f"({d['commits']} commits)"
            )
    if "ratio" in doc:
        r = doc["ratio"]
        print(
            f"  tidelog/tansu: transactional {_x(r['transactional'])}   "
            f"idempotent {_x(r['idempotent'])}"
        )
    t = doc["tidelog"]
    ratio = t["transactional_over_idempotent"]
    print(f"\ntargets (issue 13), tidelog {durability} mode:")
    print(f"  transactional >= {TXN_RATIO_TARGET}x idempotent: {_x(ratio)}"
          f"{_verdict(ratio, ratio is not None and ratio >= TXN_RATIO_TARGET)}")  # fmt: skip
    p99 = t["commit_p99_ms"]
    if durability == "wal":
        shown = "n/a" if p99 is None else f"{p99:.1f} ms"
        print(f"  commit_transaction() p99 <= {COMMIT_P99_TARGET_MS:g} ms: {shown}"
              f"{_verdict(p99, p99 is not None and p99 <= COMMIT_P99_TARGET_MS)}")  # fmt: skip
    else:
        print(f"  commit_transaction() p99 <= {COMMIT_P99_TARGET_MS:g} ms: a wal-mode target")


def _verdict(figure: float | None, met: bool) -> str:
    if figure is None:
        return " (no figure)"
    return " met" if met else " missed"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per run (default 10)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--record-bytes", type=int, default=1024, help="bytes per record value (default 1024)"
    )
    parser.add_argument(
        "--commit-ms", type=float, default=100.0, help="produce time per transaction (default 100)"
    )
    parser.add_argument(
        "--durability",
        choices=("wal", "object"),
        default="wal",
        help="tidelog's --durability (default wal)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip Tansu")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.seconds <= 0 or args.rounds <= 0 or args.record_bytes <= 0 or args.commit_ms <= 0:
        parser.error("--seconds, --rounds, --record-bytes and --commit-ms must be positive")
    settings = Settings(args.seconds, args.commit_ms / 1000, args.record_bytes)
    kinds = ["tidelog"] if args.no_peer else ["tidelog", "tansu"]
    results = {k: Samples() for k in kinds}
    extra = ("--durability", args.durability)
    peer = "" if args.no_peer else "; tansu: memory engine"
    print(f"tidelog: --durability {args.durability}, local store{peer}")
    print(
        f"{args.record_bytes} B values, {PARTITIONS} partitions, acks=all, {args.seconds:g} s per"
        f" run; a transaction every {args.commit_ms:g} ms of produce"
    )
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-txn-") as tmp:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", flush=True)
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                one_round(kind, Path(tmp), extra, settings, results[kind], r)
    doc = summary(results)
    print_summary(results, doc, args.durability)
    if args.json:
        doc["meta"] = {**vars(args), "json": str(args.json)}
        args.json.write_text(json.dumps(doc, indent=2, default=str))
    refused = [f"{k} refused transactions: {s.refused}" for k, s in results.items() if s.refused]
    if refused:
        print(f"bench/transactions.py: error: {'; '.join(refused)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

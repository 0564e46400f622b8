"""`tidelog drill replace`: break a broker under load and prove nothing acknowledged was lost.

Owns: the drill's temp directory, its two broker processes (A, killed with SIGKILL while a
producer is writing; B, its replacement on the same port), the load (a seeded, idempotent
confluent-kafka producer), the read-back and the verdict. `verify` is pure so the rules
for "lost", "duplicated" and "out of order" are tested without processes.

Guarantees: every process it starts is stopped (SIGKILL if need be) before it returns; the
temp directory is removed unless --keep. Exit 0 only when the read-back shows no lost,
duplicated or out-of-order record, a record was acknowledged by B and B stopped cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOPIC = "payments"
PARTITIONS = 6
PAYMENT_IDS = 500
KILL_FRACTION = 1 / 3
READY_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 120.0
# Paced, so that the kill lands in the middle of the load rather than after it.
RECORDS_PER_S = 5_000
_COMMITS_READ = re.compile(r"tidelog ready .*?commits_read=(\d+)")


class DrillError(Exception):
    """The drill could not run to its verdict (a broker did not start, the load stalled)."""


# -- records and the verdict (no I/O) ----------------------------------------------------


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


def make_payments(count: int, seed: int, ids: int = PAYMENT_IDS) -> list[Payment]:
    """`count` payments over `ids` keys drawn from Random(seed); seq counts up per key."""
    rng = random.Random(seed)
    next_seq: dict[str, int] = {}
    out: list[Payment] = []
    for _ in range(count):
        key = f"pay-{rng.randrange(ids)}"
        seq = next_seq.get(key, 0)
        next_seq[key] = seq + 1
        body = {"id": key, "seq": seq, "amount_cents": rng.randrange(1, 100_000)}
        out.append(Payment(key, seq, json.dumps(body, separators=(",", ":")).encode()))
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
    lost = 0
    for ack in acked:
        got = at.get((ack.partition, ack.offset))
        if got is None or got.key != ack.key or got.value != ack.value:
            lost += 1
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


# -- narration ---------------------------------------------------------------------------


class Narrator:
    """One line per step, stamped with seconds since the drill began; silent with --json."""

    def __init__(self, quiet: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.clock = clock
        self.started = clock()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.clock() - self.started:5.1f}s] {message}", flush=True)


# -- broker processes --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class BrokerRun:
    """A `tidelog serve` subprocess; its stderr goes to `log_path`, outside the data dir."""

    node_id: int
    port: int
    data_dir: Path
    bucket: Path
    mode: str
    log_path: Path
    replaces: tuple[int, ...] = ()  # `--replace`: take these nodes over at once
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "broker.cli",
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--data-dir",
            str(self.data_dir),
            "--object-store",
            f"file://{self.bucket}",
            "--node-id",
            str(self.node_id),
            "--durability",
            self.mode,
            "--flush-interval-ms",
            "100",
            *(["--replace", ",".join(map(str, self.replaces))] if self.replaces else []),
        ]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(self.command(), stdout=log_file, stderr=log_file, env=env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "tidelog ready" not in self.output():
            if self.proc.poll() is not None:
                raise DrillError(
                    f"broker exited during start-up node={self.node_id} "
                    f"code={self.proc.returncode} log={self.log_path}"
                )
            if time.monotonic() > deadline:
                raise DrillError(f"broker not ready node={self.node_id} log={self.log_path}")
            time.sleep(0.02)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def commits_read(self) -> int | None:
        found = _COMMITS_READ.search(self.output())
        return int(found.group(1)) if found else None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit code (SIGKILL and -9 if it does not stop in time)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


# -- load and read-back (confluent-kafka) ------------------------------------------------


@dataclass
class Load:
    """Produces `payments` in a thread and keeps every delivery report with its arrival."""

    bootstrap: str
    payments: list[Payment]
    kill_after: int
    kill_now: threading.Event = field(default_factory=threading.Event)
    acks: list[tuple[float, Ack]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unflushed: int = 0
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        assert self._thread is not None
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def acked(self) -> int:
        return len(self.acks)

    def _run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 60_000,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 200,
                # the kill's "connection refused" lines are expected; delivery errors are counted
                "log_level": 2,
            }
        )
        started = time.monotonic()
        try:
            for i, payment in enumerate(self.payments):
                wait = started + i / RECORDS_PER_S - time.monotonic()
                if wait > 0:
                    producer.poll(wait)
                self._produce(producer, payment)
        except Exception as exc:  # a fatal producer error: the report must say so
            self.errors.append(f"producer failed error={exc}")
        finally:
            self.unflushed = producer.flush(LOAD_TIMEOUT_S)

    def _produce(self, producer: Any, payment: Payment) -> None:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                self.errors.append(str(err))
                return
            ack = Ack(msg.partition(), msg.offset(), payment.key, payment.seq, payment.value)
            self.acks.append((time.monotonic(), ack))
            if len(self.acks) >= self.kill_after:
                self.kill_now.set()

        while True:
            try:
                producer.produce(
                    TOPIC, key=payment.key.encode(), value=payment.value, on_delivery=on_delivery
                )
                producer.poll(0)
                return
            except BufferError:
                producer.poll(0.05)


def create_topic(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    client = AdminClient({"bootstrap.servers": bootstrap})
    futures = client.create_topics([NewTopic(TOPIC, PARTITIONS, 1)], operation_timeout=10)
    try:
        futures[TOPIC].result(timeout=30)
    except Exception as exc:  # KafkaException, or a timeout
        raise DrillError(f"create topic failed topic={TOPIC} error={exc}") from exc


def read_back(bootstrap: str) -> list[ReadRecord]:
    """Every record of every partition from offset 0 to the high watermark, in offset order."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "tidelog-drill-verify",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        high = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), 30)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        out: dict[int, list[ReadRecord]] = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while any(_next_offset(out[p]) < high[p] for p in range(PARTITIONS)):
            if time.monotonic() > deadline:
                raise DrillError("read-back stalled before the high watermark")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.offset() < high[msg.partition()]:
                key = (msg.key() or b"").decode()
                record = ReadRecord(msg.partition(), msg.offset(), key, msg.value() or b"")
                out[msg.partition()].append(record)
        return [r for p in range(PARTITIONS) for r in out[p]]
    finally:
        consumer.close()


def _next_offset(records: list[ReadRecord]) -> int:
    return records[-1].offset + 1 if records else 0


# -- the drill ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillOptions:
    mode: str
    records: int
    seed: int
    keep: bool
    json: bool


def bucket_usage(bucket: Path) -> tuple[int, int]:
    """(objects, bytes) under a file:// bucket directory."""
    files = [p for p in bucket.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def first_ack_after(acks: Sequence[tuple[float, Ack]], moment: float) -> float | None:
    return next((at for at, _ in acks if at >= moment), None)


def wait_for_kill_point(load: Load, timeout: float) -> None:
    if not load.kill_now.wait(timeout):
        raise DrillError(f"load stalled acked={load.acked()} target={load.kill_after}")


def run_replace(opts: DrillOptions, say: Narrator, tmp: Path) -> dict[str, Any]:
    port = free_port()
    bucket = tmp / "bucket"
    a = BrokerRun(1, port, tmp / "a", bucket, opts.mode, tmp / "broker-1.log")
    b_data = tmp / "b"
    # wal: B is handed A's WAL, which names A's stream, so B takes it over at once;
    # object: nothing local says A is gone, so B is told (--replace 1).
    replaces = (1,) if opts.mode == "object" else ()
    b = BrokerRun(2, port, b_data, bucket, opts.mode, tmp / "broker-2.log", replaces)
    try:
        a.start()
        say.say(f"started broker node=1 ({opts.mode} mode) on 127.0.0.1:{port}")
        create_topic(f"127.0.0.1:{port}")
        say.say(f"created topic {TOPIC} partitions={PARTITIONS}")
        kill_after = max(1, int(opts.records * KILL_FRACTION))
        load = Load(f"127.0.0.1:{port}", make_payments(opts.records, opts.seed), kill_after)
        load.start()
        say.say(f"producing {opts.records} payments over {PAYMENT_IDS} ids (seed {opts.seed})")
        wait_for_kill_point(load, LOAD_TIMEOUT_S)
        a.kill()
        killed_at = time.monotonic()
        say.say(f"kill -9 broker node=1 after {load.acked()} acks")
        if opts.mode == "wal":
            (tmp / "a").rename(b_data)
            say.say(f"handed node=1's data dir (the WAL volume) to node=2: {b_data}")
        else:
            say.say("node=2 starts with an empty data dir: everything comes from the bucket")
        b.start()
        ready_at = time.monotonic()
        say.say(
            f"started broker node=2 on the same port in {ready_at - killed_at:.1f}s "
            f"commits_read={b.commits_read()}"
        )
        if not load.join(LOAD_TIMEOUT_S + 5):
            raise DrillError("producer did not finish")
        first = first_ack_after(load.acks, ready_at)
        recovery = None if first is None else first - killed_at
        say.say(
            f"producer done: {load.acked()} acked, {len(load.errors)} errors"
            + (f" (first: {load.errors[0]})" if load.errors else "")
            + f"; first ack from node=2 {_seconds(recovery)} after the kill"
        )
        records = read_back(f"127.0.0.1:{port}")
        say.say(f"read back {len(records)} records from {PARTITIONS} partitions")
        verdict = verify((ack for _, ack in load.acks), records)
        exit_code = b.stop()
        say.say(f"stopped broker node=2 (SIGTERM) exit={exit_code}")
    finally:
        a.kill()
        b.kill()
    objects, size = bucket_usage(bucket)
    return {
        "mode": opts.mode,
        "records": opts.records,
        "seed": opts.seed,
        **asdict(verdict),
        "delivery_errors": len(load.errors),
        "first_error": load.errors[0] if load.errors else None,
        "unflushed": load.unflushed,
        "recovery_s": None if recovery is None else round(recovery, 3),
        "bytes_copied_between_brokers": 0,
        "commits_read_by_replacement": b.commits_read(),
        "bucket_objects": objects,
        "bucket_bytes": size,
        "replacement_exit_code": exit_code,
    }


def passed(report: dict[str, Any]) -> bool:
    return bool(
        report["lost"] == report["duplicated"] == report["out_of_order"] == 0
        and report["recovery_s"] is not None
        and report["replacement_exit_code"] == 0
    )


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}s"


def render_table(report: dict[str, Any]) -> str:
    copied_note = (
        "(node=2 was given node=1's WAL volume, not a copy)"
        if report["mode"] == "wal"
        else "(node=2 started empty; it read only the bucket)"
    )
    rows = [
        ("mode", report["mode"]),
        ("records acknowledged", report["acknowledged"]),
        ("lost", report["lost"]),
        ("duplicated", report["duplicated"]),
        ("out of order", report["out_of_order"]),
        ("recovery time (kill -> first ack on node=2)", _seconds(report["recovery_s"])),
        ("bytes copied between brokers", f"0 {copied_note}"),
        ("commits read by the replacement", report["commits_read_by_replacement"]),
        (
            "bucket after the drill",
            f"{report['bucket_objects']} objects, {report['bucket_bytes']} bytes",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    lines.append("PASS" if passed(report) else "FAIL")
    return "\n".join(lines)


def run_drill(args: argparse.Namespace) -> int:
    opts = DrillOptions(args.mode, args.records, args.seed, args.keep, args.json)
    say = Narrator(quiet=opts.json)
    tmp = Path(tempfile.mkdtemp(prefix="tidelog-drill-"))
    say.say(f"drill dir {tmp}" + (" (kept)" if opts.keep else " (removed at the end)"))
    try:
        report = run_replace(opts, say, tmp)
    except DrillError as exc:
        print(f"tidelog drill: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report["drill_dir"] = str(tmp) if opts.keep else None
    print(json.dumps(report, indent=2) if opts.json else render_table(report))
    return 0 if passed(report) else 1


def add_drill_arguments(drill: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    """Fill in the `drill` sub-parser: `replace`."""
    sub = drill.add_subparsers(
        dest="drill_command", metavar="DRILL", parser_class=parser_class, required=True
    )
    replace = sub.add_parser(
        "replace",
        help="kill -9 a broker under load, replace it, verify every acknowledged record",
        description="Start a broker in a temp dir, produce keyed payments with an idempotent "
        "acks=all producer, kill -9 the broker a third of the way in, start a replacement "
        "(new node id, same port; wal mode: handed the old data dir; object mode: an empty "
        "one), read everything back and count lost, duplicated and out-of-order records. "
        "Exit 0 only if all three are 0. Only the file:// object store for now.",
    )
    replace.add_argument(
        "--mode",
        choices=("wal", "object"),
        default="wal",
        help="--durability of both brokers (default wal)",
    )
    replace.add_argument(
        "--records", type=_positive, default=20_000, help="payments to produce (default 20000)"
    )
    replace.add_argument("--seed", type=int, default=1, help="seed of the key sequence (default 1)")
    replace.add_argument(
        "--keep", action="store_true", help="keep the temp dir (data dirs, bucket, broker logs)"
    )
    replace.add_argument("--json", action="store_true", help="print only the report, as JSON")
    replace.add_argument(
        "--store",
        choices=("file",),
        default="file",
        help="object store of the drill: only 'file' (a temp dir) for now",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 value={text}")
    return value

"""What every drill scenario shares: options, context, the prelude, the common report.

Owns: `Scenario` (what a scenario module exports: a name, its help, a `run` that returns
the report dict, its own table rows and its own pass conditions), `DrillContext` (the
options, the narrator, the temp dir, the store, and every broker a scenario made: all
killed when the context exits, whatever happened), the prelude every scenario runs
(`start_cluster`: start the brokers, create the topic; `under_load`: start the load on
the schedule of broker/drills/schedule.py, commit offsets with the load paused, wait for
the failure point; `LoadRun.finish`: the load's end), and the fields every report has:
records acknowledged / lost / duplicated / out of order (from `records.verify`),
delivery errors, the load at the failure, committed offsets before and after, bytes
copied between brokers. A drill passes only if nothing acknowledged was lost,
duplicated or out of order, the committed offsets are intact, and the scenario's own
conditions hold."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tidelog.broker.drills.load import (
    LOAD_TIMEOUT_S,
    PARTITIONS,
    RECORDS_PER_S,
    TOPIC,
    Load,
    commit_offsets,
    committed_offsets,
    create_topic,
    read_back,
)
from tidelog.broker.drills.narration import Narrator, Progress
from tidelog.broker.drills.processes import BrokerRun, DrillError
from tidelog.broker.drills.records import ReadRecord, payment_stream, verify
from tidelog.broker.drills.schedule import Schedule
from tidelog.broker.drills.stores import DrillStore, Reads
from tidelog.broker.processes import free_port

Report = dict[str, Any]
Row = tuple[str, object]


@dataclass(frozen=True)
class DrillOptions:
    scenario: str
    mode: str
    records: int  # with --duration, the records that duration holds at the load's pace
    duration_s: float | None
    seed: int
    keep: bool
    json: bool
    store: str
    s3_endpoint: str | None
    s3_server: str
    outage_s: float


@dataclass
class DrillContext:
    opts: DrillOptions
    say: Narrator
    tmp: Path
    store: DrillStore
    brokers: list[BrokerRun] = field(default_factory=list)

    def broker(
        self,
        node_id: int,
        data_dir: Path,
        *,
        port: int | None = None,
        replaces: tuple[int, ...] = (),
    ) -> BrokerRun:
        """A broker of this drill (not started), on `port` or a free one; killed when
        the context exits."""
        broker = BrokerRun(
            node_id,
            port or free_port(),
            data_dir,
            self.store.for_broker(node_id),
            self.opts.mode,
            self.tmp / f"broker-{node_id}.log",
            replaces,
        )
        self.brokers.append(broker)
        return broker

    def __enter__(self) -> DrillContext:
        return self

    def __exit__(self, *exc: object) -> None:
        for broker in self.brokers:
            broker.kill()

    @property
    def schedule(self) -> Schedule:
        return Schedule.of(self.opts.records)

    def load_size(self) -> str:
        if self.opts.duration_s is None:
            return f"{self.opts.records} payments"
        return f"{self.opts.records} payments ({self.opts.duration_s:g}s at {RECORDS_PER_S}/s)"


@dataclass(frozen=True)
class FailurePoint:
    """The load when the drill broke something: the moment, records sent and acked."""

    at: float
    sent: int
    acked: int


@dataclass(frozen=True)
class LoadRun:
    """The drill's load once it reached the failure point: the offsets committed on the
    way, and the load then."""

    load: Load
    offsets_before: dict[int, int]
    failure: FailurePoint

    def finish(self) -> None:
        """Wait for the producer to send and settle the rest of the load."""
        if not self.load.join(LOAD_TIMEOUT_S + 5):
            raise DrillError("producer did not finish")


def start_cluster(ctx: DrillContext, first: BrokerRun, *others: BrokerRun) -> None:
    """Start `first`, then `others` on the same bucket, and create the drill's topic
    through `first`."""
    first.start()
    ctx.say.say(f"started broker node={first.node_id} ({ctx.opts.mode} mode) on {first.bootstrap}")
    for broker in others:
        broker.start()
        ctx.say.say(
            f"started broker node={broker.node_id} on {broker.bootstrap}, same bucket: "
            f"a cluster of {len(others) + 1}"
        )
    create_topic(first.bootstrap)
    ctx.say.say(f"created topic {TOPIC} partitions={PARTITIONS}")


@contextlib.contextmanager
def under_load(
    ctx: DrillContext,
    bootstrap: str,
    *,
    commit_via: str | None = None,
    look: Callable[[], str] | None = None,
    producer_config: Mapping[str, Any] | None = None,
) -> Iterator[LoadRun]:
    """Start the load through `bootstrap` (its producer with `producer_config` on top),
    commit the offsets through `commit_via` (by default `bootstrap`) at the commit point
    and narrate `look()`, and yield at the failure point, with the load's progress
    narrated until the block exits. The block breaks something, lifts the hold and
    calls `finish`."""
    load = start_load(ctx, bootstrap, **(producer_config or {}))
    with Progress(ctx.say, load.describe):
        offsets = commit_offsets_at(ctx, load, commit_via or bootstrap, look)
        yield LoadRun(load, offsets, wait_for_failure_point(ctx, load))


def start_load(ctx: DrillContext, bootstrap: str, **producer_config: Any) -> Load:
    """The seeded payments load through `bootstrap`, held at the schedule's commit point,
    started and narrated."""
    opts, plan = ctx.opts, ctx.schedule
    load = Load(
        bootstrap,
        payment_stream(opts.seed),
        plan.records,
        producer_config=dict(producer_config),
    )
    load.hold(plan.commit)
    load.start()
    ctx.say.say(
        f"producing {ctx.load_size()} (idempotent, acks=all, seed {opts.seed}) via {bootstrap}"
    )
    ctx.say.say(
        f"schedule: the load pauses at {plan.commit} for the offsets commit; the failure "
        f"comes at {plan.fail} acked, and no record past {plan.hold} is sent before it"
    )
    return load


def commit_offsets_at(
    ctx: DrillContext, load: Load, bootstrap: str, look: Callable[[], str] | None = None
) -> dict[int, int]:
    """With the load paused at the schedule's commit point and every record it sent
    settled, commit the drill group's offsets (the high watermarks) and narrate `look()`
    (e.g. a view of the bucket); then let the load run on, up to the hold."""
    plan = ctx.schedule
    load.wait_settled(plan.commit)
    offsets = commit_offsets(bootstrap)
    ctx.say.say(f"committed group offsets (the high watermarks): {offsets}")
    if look is not None:
        ctx.say.say(look())
    load.hold(plan.hold)
    return offsets


def wait_for_failure_point(ctx: DrillContext, load: Load) -> FailurePoint:
    """Block until the schedule's failure point is acked; the load then still runs (it is
    held short of its end until the scenario lifts the hold, after its failure)."""
    load.wait_settled(ctx.schedule.fail)
    load.check_running()
    return FailurePoint(time.monotonic(), load.sent, load.acked())


@dataclass(frozen=True)
class Scenario:
    name: str
    help: str
    description: str
    run: Callable[[DrillContext], Report]
    rows: Callable[[Report], Sequence[Row]]
    passed: Callable[[Report], bool]


def verdict_fields(
    ctx: DrillContext, run: LoadRun, bootstrap: str
) -> tuple[Report, list[ReadRecord]]:
    """Read everything back through `bootstrap`, judge it, and check the committed offsets.

    Returns the report's common fields and the records read back."""
    load, offsets_before, failure = run.load, run.offsets_before, run.failure
    records = read_back(bootstrap)
    ctx.say.say(f"read back {len(records)} records from {PARTITIONS} partitions via {bootstrap}")
    verdict = verify((ack for _, ack in load.acks), records)
    after = committed_offsets(bootstrap)
    intact = after == offsets_before
    ctx.say.say(
        "committed offsets of the drill's group "
        + ("are intact" if intact else f"CHANGED: before={offsets_before} after={after}")
    )
    fields = {
        "scenario": ctx.opts.scenario,
        "mode": ctx.opts.mode,
        "store": ctx.store.kind,
        "records_planned": load.records,
        "records_sent": load.sent,
        "seed": ctx.opts.seed,
        **asdict(verdict),
        "delivery_errors": len(load.errors),
        "first_error": load.errors[0] if load.errors else None,
        "unflushed": load.unflushed,
        "load_at_failure": {"sent": failure.sent, "acked": failure.acked},
        "acked_after_failure": sum(1 for at, _ in load.acks if at >= failure.at),
        "committed_offsets_before": offsets_before,
        "committed_offsets_after": after,
        "committed_offsets_intact": intact,
        "bytes_copied_between_brokers": 0,
    }
    return fields, records


def read_fields(reads: Reads | None, bucket_at_takeover: tuple[int, int]) -> Report:
    """What recovery read from the bucket: measured through the proxy (s3) or bounded (file)."""
    objects, size = bucket_at_takeover
    return {
        "recovery_read_measured": reads is not None,
        "recovery_read_gets": None if reads is None else reads.gets,
        "recovery_read_bytes": None if reads is None else reads.bytes,
        "bucket_objects_at_takeover": objects,
        "bucket_bytes_at_takeover": size,
    }


def read_row(report: Report) -> Row:
    name = "read from the bucket during recovery"
    if report["recovery_read_measured"]:
        return (
            name,
            f"{report['recovery_read_gets']} GET requests (objects and listings), "
            f"{report['recovery_read_bytes']} bytes (measured at the proxy)",
        )
    return (
        name,
        f"not measured on the file store; at most the bucket at takeover: "
        f"{report['bucket_objects_at_takeover']} objects, "
        f"{report['bucket_bytes_at_takeover']} bytes",
    )


def common_rows(report: Report) -> list[Row]:
    return [
        ("scenario", report["scenario"]),
        ("mode / store", f"{report['mode']} / {report['store']}"),
        ("records acknowledged", report["acknowledged"]),
        ("lost", report["lost"]),
        ("duplicated", report["duplicated"]),
        ("out of order", report["out_of_order"]),
        ("delivery errors (not acked, retried or failed)", report["delivery_errors"]),
        load_row(report),
    ]


def load_row(report: Report) -> Row:
    at = report["load_at_failure"]
    return (
        "load at the failure: sent / acked",
        f"{at['sent']} / {at['acked']} of {report['records_planned']}; "
        f"{report['acked_after_failure']} acked after it",
    )


def offsets_row(report: Report) -> Row:
    before = report["committed_offsets_before"]
    after = report["committed_offsets_after"]
    total_b = sum(before.values())
    verdict = "intact" if report["committed_offsets_intact"] else f"CHANGED to {after}"
    return ("committed offsets before/after", f"{len(before)} partitions, sum {total_b}: {verdict}")


def common_passed(report: Report) -> bool:
    return bool(
        report["lost"] == report["duplicated"] == report["out_of_order"] == 0
        and report["committed_offsets_intact"]
    )


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}s"


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def render_table(rows: Sequence[Row], passed: bool) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    lines.append("PASS" if passed else "FAIL")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    return json.dumps(report, indent=2)

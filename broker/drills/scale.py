"""`tidelog drill scale-out` and `scale-in`: a broker joins, or leaves, a cluster under load.

Both run two brokers on one bucket, each with its own port and data dir; the producer's
bootstrap list names both.

- scale-out: node 1 serves the load alone; at the schedule's failure point (a third of
  the records acked) node 2 starts (no `--replace`: it joins) and the partitions it wins
  move to it — node 1 stops taking writes for them, uploads what it took, and node 2
  adopts their indexes from the bucket. No record batch is copied.
- scale-in: nodes 1 and 2 share the partitions; at the failure point node 2 gets
  SIGTERM: it uploads everything, seals its stream, hands its partitions to node 1 and
  exits 0, without waiting for any session timeout.

A move takes a while to land (node 2's start-up, the hand-over), so the load is held:
short of the schedule's hold until the change is made (node 2 ready, SIGTERM sent), then
short of its settle point until every broker's Metadata shows the new placement; the
rest of the load meets the new owners, whatever --records.

Reported beyond the common verdict: which partitions moved, the time from the change
(node 2 ready / SIGTERM sent) to the first ack on a moved partition from its new owner
and to Metadata showing the new placement, and each broker's exit code. Passes when the
common checks hold, a partition moved, a moved partition was acknowledged afterwards,
and both brokers stopped cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka.admin import AdminClient

from tidelog.broker.drills.harness import (
    DrillContext,
    Report,
    Row,
    Scenario,
    common_passed,
    common_rows,
    offsets_row,
    rounded,
    seconds,
    start_cluster,
    under_load,
    verdict_fields,
)
from tidelog.broker.drills.inspection import inspect_line
from tidelog.broker.drills.load import TOPIC, Load
from tidelog.broker.drills.processes import BrokerRun, DrillError

PLACEMENT_TIMEOUT_S = 30.0


def leaders(bootstrap: str) -> dict[int, int]:
    """partition -> leader node, as Metadata says now (-1 while between owners)."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=10)
    topic = md.topics.get(TOPIC)
    return {p.id: p.leader for p in topic.partitions.values()} if topic else {}


def agreed_leaders(brokers: list[str]) -> dict[int, int] | None:
    """The placement if every broker's Metadata says the same, else None (each broker
    folds the metadata log on its own tick, so right after a move they may differ)."""
    views = [leaders(b) for b in brokers]
    return views[0] if all(v == views[0] for v in views) else None


def wait_placement(
    brokers: list[str], done: Callable[[dict[int, int]], bool]
) -> tuple[float, dict[int, int]] | None:
    """Poll every broker's Metadata until they agree and `done(leaders)`; the moment it
    held and the placement, or None on timeout."""
    deadline = time.monotonic() + PLACEMENT_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            led = agreed_leaders(brokers)
            if led is not None and done(led):
                return time.monotonic(), led
        except Exception:  # a broker between states; Metadata is asked again
            pass
        time.sleep(0.05)
    return None


def first_ack_from_new_owner(load: Load, adopted: dict[int, int]) -> float | None:
    """When the first ack arrived for an offset a new owner assigned: at or beyond the
    end it adopted a moved partition at (`adopted`: partition -> that end)."""
    return next(
        (
            at
            for at, ack in load.acks
            if ack.partition in adopted and ack.offset >= adopted[ack.partition]
        ),
        None,
    )


def run_out(ctx: DrillContext) -> Report:
    return _run(ctx, growing=True)


def run_in(ctx: DrillContext) -> Report:
    return _run(ctx, growing=False)


def _run(ctx: DrillContext, *, growing: bool) -> Report:
    say = ctx.say
    a = ctx.broker(1, ctx.tmp / "a")
    b = ctx.broker(2, ctx.tmp / "b")
    boot_a, boot_b = a.bootstrap, b.bootstrap
    both = f"{boot_a},{boot_b}"
    b_code: int | None = None
    start_cluster(ctx, a, *([] if growing else [b]))  # scale-in: both from the start
    shared = wait_placement(
        [boot_a] if growing else [boot_a, boot_b],
        lambda led: set(led.values()) == ({1} if growing else {1, 2}),
    )
    if shared is None:
        raise DrillError("the partitions never got their leaders")
    before = shared[1]
    say.say(f"partition leaders: {_placement(before)}")

    def before_the_change() -> str:
        return "before the change (the load paused), " + inspect_line(ctx.store.for_inspect())

    with under_load(ctx, both, look=before_the_change) as load_run:
        load, failure = load_run.load, load_run.failure
        say.say(f"the change comes after {failure.acked} acks ({failure.sent} sent)")
        if growing:
            changed_at = _join(b, say.say)
            load.hold(ctx.schedule.settle)
            placed = wait_placement([boot_a, boot_b], lambda led: 2 in led.values())
        else:
            changed_at = _leave(b, say.say)
            load.hold(ctx.schedule.settle)
            placed = wait_placement([boot_a], lambda led: set(led.values()) == {1})
        load.hold(None)
        if not growing:
            b_code = b.stop()
            for line in b.lines_with("left the cluster"):
                say.say(f"  node=2: {line.split(': ', 1)[-1]}")
        placed_at = placed[0] if placed else None
        after = placed[1] if placed else leaders(boot_a)
        moved = {p for p, node in after.items() if before.get(p) != node}
        say.say(
            f"partition leaders now: {_placement(after)}; moved: {sorted(moved)}"
            + (
                f", Metadata showed it {placed_at - changed_at:.2f}s after the change"
                if placed_at
                else ", never"
            )
        )
        load_run.finish()
    new_owner = b if growing else a
    adopted = {
        p: end for p, end in new_owner.takeover_ends(TOPIC, "adopted keys").items() if p in moved
    }
    first = first_ack_from_new_owner(load, adopted)
    say.say(
        f"producer done: {load.acked()} acked, {len(load.errors)} delivery errors; "
        f"node={2 if growing else 1} adopted the moved partitions at {adopted}; its first "
        f"ack on one came {seconds(rounded(_since(first, changed_at)))} after the change"
    )
    report, _ = verdict_fields(ctx, load_run, boot_a)
    say.say(f"after the drill, {inspect_line(ctx.store.for_inspect())}")
    a_code = a.stop()
    if growing:
        b_code = b.stop()
    say.say(f"stopped both brokers (SIGTERM): node=1 exit={a_code} node=2 exit={b_code}")
    return {
        **report,
        "partitions_moved": sorted(moved),
        "adopted_at_offsets": {str(p): e for p, e in sorted(adopted.items())},
        "change_to_first_ack_on_new_owner_s": rounded(_since(first, changed_at)),
        "change_to_metadata_s": rounded(_since(placed_at, changed_at)),
        "node_1_exit_code": a_code,
        "node_2_exit_code": b_code,
    }


def _join(b: BrokerRun, say: Callable[[str], None]) -> float:
    b.start()
    changed_at = time.monotonic()
    say("started broker node=2 on its own port: it joins the cluster (no --replace)")
    return changed_at


def _leave(b: BrokerRun, say: Callable[[str], None]) -> float:
    changed_at = time.monotonic()
    b.terminate()
    say("SIGTERM broker node=2: it uploads, seals its stream and hands its partitions over")
    return changed_at


def _since(moment: float | None, start: float) -> float | None:
    return None if moment is None else moment - start


def _placement(led: dict[int, int]) -> str:
    return " ".join(f"{p}->{node}" for p, node in sorted(led.items())) or "(none)"


def rows(report: Report) -> list[Row]:
    growing = report["scenario"] == "scale-out"
    change = "node=2 ready" if growing else "SIGTERM to node=2"
    return [
        *common_rows(report),
        ("partitions moved", ", ".join(map(str, report["partitions_moved"])) or "none"),
        (
            f"{change} -> first ack on the new owner",
            seconds(report["change_to_first_ack_on_new_owner_s"]),
        ),
        (f"{change} -> Metadata shows the new placement", seconds(report["change_to_metadata_s"])),
        (
            "bytes copied between brokers",
            "0, by construction (the new owner adopts indexes from the bucket)",
        ),
        offsets_row(report),
        (
            "exit codes node=1 / node=2",
            f"{report['node_1_exit_code']} / {report['node_2_exit_code']}",
        ),
    ]


def passed(report: Report) -> bool:
    return (
        common_passed(report)
        and bool(report["partitions_moved"])
        and report["change_to_first_ack_on_new_owner_s"] is not None
        and report["node_1_exit_code"] == 0
        and report["node_2_exit_code"] == 0
    )


SCALE_OUT = Scenario(
    name="scale-out",
    help="a second broker joins under load; the partitions it wins move to it",
    description="Start a broker, produce keyed payments with an idempotent acks=all "
    "producer, start a second broker on the same bucket a third of the way in and verify "
    "that partitions move to it without losing, duplicating or reordering anything.",
    run=run_out,
    rows=rows,
    passed=passed,
)

SCALE_IN = Scenario(
    name="scale-in",
    help="one of two brokers is stopped under load; the other takes its partitions",
    description="Start two brokers on one bucket, produce keyed payments with an "
    "idempotent acks=all producer, SIGTERM one of them a third of the way in and verify "
    "that its partitions move to the other at once, with nothing lost, duplicated or "
    "reordered.",
    run=run_in,
    rows=rows,
    passed=passed,
)

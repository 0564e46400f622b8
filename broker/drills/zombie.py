"""`tidelog drill zombie`: the replaced broker is not dead; it comes back under load.

Broker A (node 1) serves the load. The drill commits the offsets group at the schedule's
commit point and, at its failure point (a third of the records acked), freezes A with
SIGSTOP (it keeps its sockets, its WAL and its belief that it
owns the log), then starts B (node 2, its own port; object mode: an empty data dir; wal
mode: A's data dir, the same path, as a shared WAL volume would be), waits a moment and
resumes A with SIGCONT while the producer (bootstrap list naming both ports) keeps going.

The verdict reads everything back from B only. Any ack not in the read-back is lost,
whoever gave it: an ack A gave after B took over for data B never saw is exactly what
fencing must prevent, and it fails the drill. The report also says what A did once
resumed: its log lines mentioning "fenced", whether it exited on its own, and how many
acks arrived after it resumed and after the takeover, and how many of those were lost.
"""

from __future__ import annotations

import time

from tidelog.broker.drills.harness import (
    DrillContext,
    Report,
    Row,
    Scenario,
    common_passed,
    common_rows,
    offsets_row,
    read_fields,
    read_row,
    rounded,
    seconds,
    start_cluster,
    under_load,
    verdict_fields,
)
from tidelog.broker.drills.inspection import inspect_line
from tidelog.broker.drills.load import TOPIC
from tidelog.broker.drills.processes import LogWatch
from tidelog.broker.drills.records import acks_between, first_ack_after, lost_acks

FENCED_WAIT_S = 5.0
# How long A stays frozen after B is ready: the producer's requests to A are still in
# flight (request.timeout.ms is 30 s), so A, resumed, answers them: the window a zombie has.
FROZEN_AFTER_TAKEOVER_S = 1.0
_FOREVER = float("inf")
# Records the zombie holds hostage time out after this long instead of a minute: they
# were never acknowledged, so they count as delivery errors, not as lost.
ZOMBIE_PRODUCER = {"message.timeout.ms": 10_000, "request.timeout.ms": 5_000}


def run(ctx: DrillContext) -> Report:
    opts, say = ctx.opts, ctx.say
    a = ctx.broker(1, ctx.tmp / "a")
    # A lives, so its data dir (LOCK) cannot be handed over: B starts empty and takes
    # A's keys with --replace 1 (wal mode: giving up what only A's WAL holds).
    b = ctx.broker(2, ctx.tmp / "b", replaces=(1,))
    boot_a, boot_b = a.bootstrap, b.bootstrap
    start_cluster(ctx, a)
    both = f"{boot_a},{boot_b}"
    with under_load(ctx, both, commit_via=boot_a, producer_config=ZOMBIE_PRODUCER) as load_run:
        load, failure = load_run.load, load_run.failure
        a.pause()
        paused_at = time.monotonic()
        # the rest of the load meets the frozen broker: what it answers once resumed
        # is the zombie's window
        load.hold(None)
        say.say(
            f"SIGSTOP broker node=1 after {failure.acked} acks ({failure.sent} sent): "
            "frozen, not dead"
        )
        at_takeover = ctx.store.usage()
        reads_before = ctx.store.read_counter(2)
        if opts.mode == "wal":
            say.say(
                "node=1's data dir cannot be handed over while node=1 lives (it holds "
                "its LOCK): node=2 starts empty with --replace 1, giving up what only "
                "node=1's WAL holds, and waits out node=1's ack lease"
            )
        else:
            say.say("node=2 starts with an empty data dir and --replace 1")
        b.start()
        takeover_at = time.monotonic()
        reads_after = ctx.store.read_counter(2)
        say.say(
            f"node=2 serves on {boot_b}, {takeover_at - paused_at:.1f}s after the "
            "freeze; it logged:"
        )
        for line in b.takeover_lines():
            say.say(f"  node=2: {line}")
        say.say(f"while node=1 is frozen, {inspect_line(ctx.store.for_inspect())}")
        time.sleep(max(0.0, takeover_at + FROZEN_AFTER_TAKEOVER_S - time.monotonic()))
        with LogWatch(a, {"fenced": r"fenced"}) as watch:
            a.resume()
            resumed_at = time.monotonic()
            say.say("SIGCONT broker node=1: the zombie runs again, load continues")
            load_run.finish()
            deadline = resumed_at + FENCED_WAIT_S
            while "fenced" not in watch.seen and time.monotonic() < deadline:
                time.sleep(0.05)
        fenced_at = watch.seen.get("fenced")
    say.say(
        f"producer done: {load.acked()} acked, {len(load.errors)} delivery errors"
        + (f" (first: {load.errors[0]})" if load.errors else "")
    )
    zombie_exited = not a.running()
    zombie_code = a.proc.returncode if zombie_exited and a.proc else None
    fenced_lines = a.lines_with("fenced")
    say.say(
        f"node=1 after resuming: {len(fenced_lines)} log lines mentioning 'fenced'"
        + (f" (first {fenced_at - resumed_at:.2f}s after SIGCONT)" if fenced_at else "")
        + (f", exited on its own code={zombie_code}" if zombie_exited else ", still running")
    )
    report, records = verdict_fields(ctx, load_run, boot_b)
    a_stop = None if zombie_exited else a.stop()
    b_code = b.stop()
    say.say(
        ("node=1 had exited" if zombie_exited else f"stopped node=1 (SIGTERM) exit={a_stop}")
        + f"; stopped node=2 (SIGTERM) exit={b_code}"
    )
    after_takeover = acks_between(load.acks, takeover_at, _FOREVER)
    after_resume = acks_between(load.acks, resumed_at, _FOREVER)
    lost_after_takeover = lost_acks(after_takeover, records)
    lost_before_freeze = lost_acks(acks_between(load.acks, 0.0, paused_at), records)
    # What node=2 adopted of each partition: everything below was in the bucket and must
    # be there; node=1's acks at or above it were only in node=1's WAL (wal mode), which
    # --replace gives up, whenever their response reached the client.
    ends = b.takeover_ends(TOPIC)
    lost_all = lost_acks((ack for _, ack in load.acks), records)
    lost_below_end = [a for a in lost_all if a.offset < ends.get(a.partition, 0)]
    first = first_ack_after(load.acks, takeover_at)
    reads = None if reads_before is None or reads_after is None else reads_after.since(reads_before)
    return {
        **report,
        "recovery_s": rounded(None if first is None else first - paused_at),
        "acks_after_takeover": len(after_takeover),
        "acks_after_resume": len(after_resume),
        "lost_after_takeover": len(lost_after_takeover),
        "lost_acked_before_freeze": len(lost_before_freeze),
        "takeover_ends": {str(p): e for p, e in sorted(ends.items())},
        "lost_below_takeover_end": len(lost_below_end),
        "lost_from_wal_tail": len(lost_all) - len(lost_below_end),
        "zombie_fenced_lines": fenced_lines[:5],
        "zombie_fenced_after_resume_s": rounded(
            None if fenced_at is None else fenced_at - resumed_at
        ),
        "zombie_exited_by_itself": zombie_exited,
        "zombie_exit_code": zombie_code if zombie_exited else a_stop,
        "commits_read_by_replacement": b.commits_read(),
        **read_fields(reads, at_takeover),
        "replacement_exit_code": b_code,
    }


def rows(report: Report) -> list[Row]:
    fenced = report["zombie_fenced_lines"]
    kept = report["acks_after_takeover"] - report["lost_after_takeover"]
    return [
        *common_rows(report),
        (
            "freeze -> first ack after the takeover (either broker)",
            seconds(report["recovery_s"]),
        ),
        (
            "acks after the takeover / after SIGCONT",
            f"{report['acks_after_takeover']} / {report['acks_after_resume']}",
        ),
        (
            "  of those: in node=2's log / lost",
            f"{kept} / {report['lost_after_takeover']}"
            + ("" if kept else " (no ack after the takeover is in the new owner's log)"),
        ),
        (
            "lost that node=1 acked before the freeze",
            report["lost_acked_before_freeze"],
        ),
        (
            "lost below what node=2 took over / from node=1's WAL tail",
            f"{report['lost_below_takeover_end']} / {report['lost_from_wal_tail']}"
            + (
                " (acked by node=1, held only in its WAL: given up by --replace)"
                if report["lost_from_wal_tail"]
                else ""
            ),
        ),
        (
            "zombie (node=1) after SIGCONT",
            (
                f"fenced ({len(fenced)} log lines, first after "
                f"{seconds(report['zombie_fenced_after_resume_s'])})"
                if fenced
                else "never fenced"
            )
            + ("; exited by itself" if report["zombie_exited_by_itself"] else "; kept running")
            + f", exit code {report['zombie_exit_code']}",
        ),
        ("bytes copied between brokers", "0, by construction (nothing is copied)"),
        read_row(report),
        offsets_row(report),
    ]


def passed(report: Report) -> bool:
    # Safety only, as the issue defines the drill: a client stuck on the zombie (no ack
    # after the takeover) shows in the table and the JSON, but loses nothing it was told.
    return (
        common_passed(report)
        and report["lost_after_takeover"] == 0
        and report["replacement_exit_code"] == 0
    )


SCENARIO = Scenario(
    name="zombie",
    help="freeze a broker, replace it, unfreeze the old one under load; nothing it acks "
    "after the takeover may be lost",
    description="Start broker node=1, produce keyed payments (bootstrap list naming both "
    "brokers), SIGSTOP node=1 a third of the way in, start node=2 on another port (wal "
    "mode: handed node=1's data dir while node=1 lives; object mode: an empty one), then "
    "SIGCONT node=1. Read everything back from node=2; exit 0 only if nothing acknowledged "
    "(by either broker) is lost, duplicated or out of order. Reports what node=1 did "
    "after resuming: 'fenced' log lines, whether it exited, acks after the takeover.",
    run=run,
    rows=rows,
    passed=passed,
)

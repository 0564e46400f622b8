"""`tidelog drill replace`: kill -9 a broker under load, replace it, verify every ack.

Broker A (node 1) serves the load; at the schedule's commit point the drill commits the
offsets group, at its failure point (a third of the records acked) it kills A with
SIGKILL and starts B (node 2) on the same port: in wal mode handed A's data dir (the WAL
volume, renamed, not copied), in object mode an empty one. The producer only retries;
the rest of the load, held until the kill, goes to B. Passes when the common checks
hold, B acknowledged a record and B stopped cleanly.
"""

from __future__ import annotations

import time
from pathlib import Path

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
from tidelog.broker.drills.records import first_ack_after


def run(ctx: DrillContext) -> Report:
    opts, say = ctx.opts, ctx.say
    a = ctx.broker(1, ctx.tmp / "a")
    b_data = ctx.tmp / "b"
    # wal: B is handed A's WAL, which names A's stream, so B takes it over at once;
    # object: nothing local says A is gone, so B is told (--replace 1).
    b = ctx.broker(2, b_data, port=a.port, replaces=(1,) if opts.mode == "object" else ())
    bootstrap = a.bootstrap
    start_cluster(ctx, a)

    def before_the_kill() -> str:
        view = inspect_line(ctx.store.for_inspect(), wal_dir(ctx, a.data_dir))
        return f"before the kill (the load paused), {view}"

    with under_load(ctx, bootstrap, look=before_the_kill) as load_run:
        load, failure = load_run.load, load_run.failure
        a.kill()
        killed_at = time.monotonic()
        load.hold(None)
        say.say(f"kill -9 broker node=1 after {failure.acked} acks ({failure.sent} sent)")
        at_takeover = ctx.store.usage()
        say.say(
            f"the bucket holds {at_takeover[0]} objects, {at_takeover[1]} bytes: "
            "everything node=1 uploaded; nothing is copied to node=2"
        )
        if opts.mode == "wal":
            (ctx.tmp / "a").rename(b_data)
            say.say(f"handed node=1's data dir (the WAL volume) to node=2: {b_data}")
        else:
            say.say(
                "node=2 starts with an empty data dir and --replace 1: "
                "everything comes from the bucket"
            )
        reads_before = ctx.store.read_counter(2)
        b.start()
        ready_at = time.monotonic()
        reads_after = ctx.store.read_counter(2)
        took = b.takeover_fields()
        say.say(f"node=2 took over on the same port in {ready_at - killed_at:.1f}s; it logged:")
        for line in b.takeover_lines():
            say.say(f"  node=2: {line}")
        load_run.finish()
    first = first_ack_after(load.acks, ready_at)
    recovery = None if first is None else first - killed_at
    say.say(
        f"producer done: {load.acked()} acked, {len(load.errors)} delivery errors"
        + f"; first ack from node=2 {seconds(rounded(recovery))} after the kill"
    )
    report, _ = verdict_fields(ctx, load_run, bootstrap)
    exit_code = b.stop()
    say.say(f"stopped broker node=2 (SIGTERM) exit={exit_code}")
    view = inspect_line(ctx.store.for_inspect(), wal_dir(ctx, b.data_dir))
    say.say(f"after the drill, {view}")
    reads = None
    if reads_before is not None and reads_after is not None:
        reads = reads_after.since(reads_before)
    objects, size = ctx.store.usage()
    return {
        **report,
        "recovery_s": rounded(recovery),
        "replacement_ready_s": rounded(ready_at - killed_at),
        "commits_read_by_replacement": b.commits_read(),
        "wal_batches_replayed": _int_or_none(took.get("wal_batches_replayed")),
        **read_fields(reads, at_takeover),
        "bucket_objects": objects,
        "bucket_bytes": size,
        "replacement_exit_code": exit_code,
    }


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def wal_dir(ctx: DrillContext, data_dir: Path) -> Path | None:
    """The data dir to show inspect in wal mode (what is only in the WAL), else None."""
    return data_dir if ctx.opts.mode == "wal" else None


def rows(report: Report) -> list[Row]:
    copied_note = (
        "(node=2 was given node=1's WAL volume, not a copy)"
        if report["mode"] == "wal"
        else "(node=2 started empty; it read only the bucket)"
    )
    return [
        *common_rows(report),
        ("recovery (kill -> first ack on node=2)", seconds(report["recovery_s"])),
        ("  of which kill -> node=2 ready", seconds(report["replacement_ready_s"])),
        ("bytes copied between brokers", f"0, by construction {copied_note}"),
        ("commits folded by the replacement", report["commits_read_by_replacement"]),
        ("WAL batches replayed by the replacement", report["wal_batches_replayed"]),
        read_row(report),
        offsets_row(report),
        (
            "bucket after the drill",
            f"{report['bucket_objects']} objects, {report['bucket_bytes']} bytes",
        ),
    ]


def passed(report: Report) -> bool:
    return (
        common_passed(report)
        and report["recovery_s"] is not None
        and report["replacement_exit_code"] == 0
    )


SCENARIO = Scenario(
    name="replace",
    help="kill -9 a broker under load, replace it, verify every acknowledged record",
    description="Start a broker in a temp dir, produce keyed payments with an idempotent "
    "acks=all producer, kill -9 the broker a third of the way in, start a replacement "
    "(new node id, same port; wal mode: handed the old data dir; object mode: an empty "
    "one), read everything back and count lost, duplicated and out-of-order records. "
    "Exit 0 only if all three are 0 and the committed group offsets are intact.",
    run=run,
    rows=rows,
    passed=passed,
)

"""`tidelog drill object-store-outage`: the bucket stops answering under load, then returns.

One broker (node 1) serves the load. The drill commits the offsets group at the
schedule's commit point and, at its failure point (a third of the records acked), cuts
the store for --outage seconds, and lets the rest of the load go: for the file store a switch file
makes every call of the broker's `fault+file://` store fail; for S3 the loopback proxy
between broker and server drops every connection. Then it restores the store.

It reports, without asserting either way, how many records were acknowledged during the
outage (wal mode acks from its WAL up to its backlog limit; object mode waits for the
store), the time from the store's return to the next ack and to the broker's "uploads
resumed" log line. The verdict is the common one (nothing acknowledged lost, duplicated
or out of order; offsets intact) and the broker must stop cleanly afterwards.
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
    rounded,
    seconds,
    start_cluster,
    under_load,
    verdict_fields,
)
from tidelog.broker.drills.processes import LogWatch
from tidelog.broker.drills.records import acks_between, first_ack_after


def run(ctx: DrillContext) -> Report:
    opts, say = ctx.opts, ctx.say
    a = ctx.broker(1, ctx.tmp / "a")
    start_cluster(ctx, a)
    with under_load(ctx, a.bootstrap) as load_run:
        load, failure = load_run.load, load_run.failure
        patterns = {"failed": r"upload failed", "resumed": r"uploads resumed"}
        with LogWatch(a, patterns) as watch:
            ctx.store.cut()
            cut_at = time.monotonic()
            load.hold(None)
            say.say(
                f"object store cut after {failure.acked} acks ({failure.sent} sent), "
                f"for {opts.outage_s:g}s"
            )
            time.sleep(opts.outage_s)
            ctx.store.restore()
            restored_at = time.monotonic()
            during = len(acks_between(load.acks, cut_at, restored_at))
            say.say(f"object store back; {during} records were acked during the outage")
            load_run.finish()
            if "failed" in watch.seen and "resumed" not in watch.seen:
                # the load may end before the next upload: give it a few flushes
                deadline = time.monotonic() + 30
                while "resumed" not in watch.seen and time.monotonic() < deadline:
                    time.sleep(0.05)
        seen = dict(watch.seen)
    first = first_ack_after(load.acks, restored_at)
    say.say(
        f"producer done: {load.acked()} acked, {len(load.errors)} delivery errors"
        + (f" (first: {load.errors[0]})" if load.errors else "")
        + f"; first ack after the store returned: {seconds(_since(first, restored_at))}"
    )
    report, _ = verdict_fields(ctx, load_run, a.bootstrap)
    exit_code = a.stop()
    say.say(f"stopped broker node=1 (SIGTERM) exit={exit_code}")
    return {
        **report,
        "outage_s": round(restored_at - cut_at, 3),
        "acks_during_outage": during,
        "acks_before_outage": len(acks_between(load.acks, 0.0, cut_at)),
        "first_ack_after_return_s": rounded(_since(first, restored_at)),
        "broker_saw_failure_after_s": rounded(_since(seen.get("failed"), cut_at)),
        "uploads_resumed_after_return_s": rounded(_since(seen.get("resumed"), restored_at)),
        "broker_exit_code": exit_code,
    }


def _since(moment: float | None, start: float) -> float | None:
    return None if moment is None else max(0.0, moment - start)


def rows(report: Report) -> list[Row]:
    saw = report["broker_saw_failure_after_s"]
    return [
        *common_rows(report),
        ("outage", f"{report['outage_s']:.2f}s"),
        ("acks during the outage", report["acks_during_outage"]),
        (
            "broker logged 'upload failed'",
            "never (no upload was due)" if saw is None else f"{saw:.2f}s after the cut",
        ),
        ("store back -> first ack", _first_ack(report)),
        ("store back -> 'uploads resumed'", seconds(report["uploads_resumed_after_return_s"])),
        offsets_row(report),
    ]


def _first_ack(report: Report) -> str:
    if report["acknowledged"] == report["acks_before_outage"] + report["acks_during_outage"]:
        return "n/a: every record was acked before the store returned"
    return seconds(report["first_ack_after_return_s"])


def passed(report: Report) -> bool:
    return common_passed(report) and report["broker_exit_code"] == 0


SCENARIO = Scenario(
    name="object-store-outage",
    help="cut the object store under load, bring it back, verify every acknowledged record",
    description="Start a broker, produce keyed payments, cut its object store for "
    "--outage seconds a third of the way in (file store: a switch file; s3: a proxy "
    "drops every connection), restore it, read everything back. Reports acks during the "
    "outage and the time to recover; exit 0 only if nothing acknowledged is lost, "
    "duplicated or out of order and the broker stops cleanly.",
    run=run,
    rows=rows,
    passed=passed,
)

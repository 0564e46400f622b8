"""`tidelog drill txn`: a consume-transform-produce pipeline under kill -9, judged like
Jepsen's Kafka workload.

One broker (node 1). The usual load fills `payments`; a pipeline process
(broker/drills/txn_pipeline.py, a stable transactional id) turns each input record into
one output record of `payments-out` inside transactions that also carry the input
offsets, and aborts some on purpose. Meanwhile a read_committed consumer tails the
output and raw read_committed fetches note each response's last stable offset.

Faults, counted in records (broker/drills/schedule.py), never in seconds: once a third
of the load is acked and the pipeline has committed at least the schedule's commit
point, kill -9 the pipeline (as soon as its log says a transaction's records are written
and not yet committed) and start it again with the same transactional id (which fences
the old one and aborts its open transaction; it resumes from the committed offsets);
once it committed again, let the load on to the schedule's settle point and, halfway
there (and again inside one of the pipeline's transactions), kill -9 the broker and
restart it on the same data dir and port (a pipeline that caught up with the held load
is killed idle). When the pipeline has committed every input record, it is stopped
(SIGTERM) and the output is read back read_committed and read_uncommitted;
`txn_check.check` counts the anomalies. Passes when the common checks hold for the
input, every anomaly count is 0, and the pipeline and the broker stop cleanly.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

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
from tidelog.broker.drills.load import LOAD_TIMEOUT_S, PARTITIONS, TOPIC, create_topic
from tidelog.broker.drills.processes import BrokerRun, DrillError
from tidelog.broker.drills.txn_check import check
from tidelog.broker.drills.txn_reads import LsoProbe, Tail, high_watermarks, read_outputs
from tidelog.broker.processes import ChildProcess, ChildStartError

OUTPUT = "payments-out"
GROUP = "tidelog-drill-txn"
TRANSACTIONAL_ID = "tidelog-drill-txn"
TXN_MS = 100
# A transaction per 1/60 of the load (10 to 1000 records): enough transactions, and so
# enough aborts on purpose, for any --records, and a pipeline that keeps up.
TXNS_PER_LOAD = 60
ABORT_RATIO = 0.2
_COMMITTED = re.compile(r"^committed txn=\S+ records=\d+ to=(\S+)$", re.M)
_ABORTED = re.compile(r"^aborted txn=\S+ records=\d+ reason=(\S+)", re.M)
_PRODUCED = re.compile(r"^produced txn=", re.M)
_POLL_S = 0.005  # a transaction stays open for a few ms after its records are flushed


class PipelineRun(ChildProcess):
    """The pipeline process; `start_run(n)` starts its n-th run (the same transactional
    id each time). Its log is its stdout: one line per transaction."""

    def __init__(self, bootstrap: str, seed: int, records: int, log_path: Path) -> None:
        super().__init__("txn pipeline", [], log_path=log_path)
        self.bootstrap, self.seed = bootstrap, seed
        self.txn_records = min(1000, max(10, records // TXNS_PER_LOAD))
        self.runs = 0

    def start_run(self) -> None:
        self.runs += 1
        self.command = [
            sys.executable, "-m", "tidelog.broker.drills.txn_pipeline",
            "--bootstrap", self.bootstrap, "--input", TOPIC, "--output", OUTPUT,
            "--partitions", str(PARTITIONS), "--group", GROUP,
            "--transactional-id", TRANSACTIONAL_ID, "--seed", str(self.seed),
            "--run", str(self.runs), "--txn-records", str(self.txn_records),
            "--txn-ms", str(TXN_MS), "--abort-ratio", str(ABORT_RATIO),
        ]  # fmt: skip
        self.start()
        try:
            self.wait_ready(lambda: "pipeline started" in self.output_of_this_run(), 60.0)
        except ChildStartError as exc:
            raise DrillError(exc.summary) from exc

    def positions(self, text: str | None = None) -> dict[int, int]:
        """The input positions its transactions committed, over every run so far."""
        out: dict[int, int] = {}
        for found in _COMMITTED.finditer(self.output() if text is None else text):
            for item in found.group(1).split(","):
                p, _, off = item.partition(":")
                out[int(p)] = max(out.get(int(p), 0), int(off))
        return out

    def processed(self) -> int:
        return sum(self.positions().values())

    def committed_in_this_run(self) -> bool:
        return bool(self.positions(self.output_of_this_run()))

    def aborts(self) -> dict[str, int]:
        counts = {"on-purpose": 0, "after an error": 0}
        for found in _ABORTED.finditer(self.output()):
            counts["on-purpose" if found.group(1) == "on-purpose" else "after an error"] += 1
        return counts

    def in_transaction(self) -> bool:
        """Its last line says a transaction's records are written and not yet ended."""
        lines = self.output_of_this_run().strip().splitlines()
        return bool(lines) and _PRODUCED.match(lines[-1]) is not None

    def commits(self) -> int:
        return len(_COMMITTED.findall(self.output()))

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while not condition():
            if not self.running():
                raise DrillError(f"the pipeline exited {what} log={self.log_path}")
            if time.monotonic() > deadline:
                raise DrillError(f"the pipeline stalled {what} log={self.log_path}")
            time.sleep(_POLL_S)


def run(ctx: DrillContext) -> Report:
    a = ctx.broker(1, ctx.tmp / "a")
    start_cluster(ctx, a)
    create_topic(a.bootstrap, OUTPUT)
    ctx.say.say(f"created topic {OUTPUT} partitions={PARTITIONS}")
    pipeline = PipelineRun(a.bootstrap, ctx.opts.seed, ctx.opts.records, ctx.tmp / "pipeline.log")
    try:
        return _run(ctx, a, pipeline)
    finally:
        pipeline.kill()


def _run(ctx: DrillContext, a: BrokerRun, pipeline: PipelineRun) -> Report:
    say, plan = ctx.say, ctx.schedule
    pipeline.start_run()
    say.say(
        f"pipeline started: transactional.id={TRANSACTIONAL_ID}, read_committed, a "
        f"transaction every {pipeline.txn_records} records or {TXN_MS} ms, about 1 in "
        f"{round(1 / ABORT_RATIO)} aborted on purpose (seed {ctx.opts.seed})"
    )
    with (
        Tail(a.bootstrap, OUTPUT, PARTITIONS) as tail,
        LsoProbe(a.bootstrap, OUTPUT, PARTITIONS) as probe,
    ):
        with under_load(ctx, a.bootstrap) as load_run:
            load = load_run.load

            def busy_or_idle() -> bool:
                # inside a transaction, or caught up with the (held) load: nothing to wait for
                return pipeline.in_transaction() or pipeline.processed() >= load.acked()

            # past the commit point, where the load paused: the pipeline is in the flow again
            pipeline.wait_for(
                lambda: pipeline.processed() > plan.commit and busy_or_idle(), "before its kill"
            )
            pipeline_killed_after = pipeline.processed()
            pipeline.kill()
            say.say(
                f"kill -9 the pipeline after {pipeline_killed_after} input records "
                f"committed ({load.acked()} acked)"
            )
            pipeline.start_run()
            say.say("pipeline restarted with the same transactional.id: the old one is fenced")
            pipeline.wait_for(pipeline.committed_in_this_run, "before committing again")
            resumed = pipeline.processed()
            say.say(f"the restarted pipeline committed; {resumed} input records processed")
            load.hold(plan.settle)
            load.wait_settled((plan.hold + plan.settle) // 2)
            pipeline.wait_for(busy_or_idle, "before the broker's kill")
            broker_killed_after = load.acked()
            a.kill()
            killed_at = time.monotonic()
            say.say(
                f"kill -9 broker node=1 after {broker_killed_after} acks, "
                f"{pipeline.processed()} input records processed"
            )
            a.start()
            restarted_s = time.monotonic() - killed_at
            say.say(f"restarted broker node=1 on the same data dir and port in {restarted_s:.1f}s")
            load.hold(None)
            load_run.finish()
        say.say(f"producer done: {load.acked()} acked, {len(load.errors)} delivery errors")
        ends = high_watermarks(a.bootstrap, TOPIC, PARTITIONS)
        pipeline.wait_for(
            lambda: all(pipeline.positions().get(p, 0) >= end for p, end in ends.items()),
            "before processing every input record",
        )
        say.say(f"the pipeline committed every input record: {sum(ends.values())}")
    pipeline_exit = pipeline.stop()
    say.say(f"stopped the pipeline (SIGTERM) exit={pipeline_exit}")
    report, _ = verdict_fields(ctx, load_run, a.bootstrap)
    committed = read_outputs(a.bootstrap, OUTPUT, PARTITIONS, committed=True)
    uncommitted = read_outputs(a.bootstrap, OUTPUT, PARTITIONS, committed=False)
    say.say(
        f"read back {OUTPUT}: {len(committed)} records read_committed, "
        f"{len(uncommitted)} read_uncommitted; tailed {len(tail.records)}, "
        f"{len(probe.batches)} batches in {probe.fetches} raw fetches"
    )
    verdict = check(
        (ack for _, ack in load.acks), committed, uncommitted, tail.records, probe.batches
    )
    exit_code = a.stop()
    say.say(f"stopped broker node=1 (SIGTERM) exit={exit_code}")
    aborts = pipeline.aborts()
    return {
        **report,
        **{f"txn_{k}": v for k, v in asdict(verdict).items()},
        "txn_anomalies": verdict.anomalies(),
        "pipeline_runs": pipeline.runs,
        "pipeline_commits": pipeline.commits(),
        "pipeline_aborts_on_purpose": aborts["on-purpose"],
        "pipeline_aborts_after_error": aborts["after an error"],
        "pipeline_killed_after_processed": pipeline_killed_after,
        "broker_killed_after_acked": broker_killed_after,
        "broker_restart_s": rounded(restarted_s),
        "pipeline_exit_code": pipeline_exit,
        "broker_exit_code": exit_code,
    }


def rows(report: Report) -> list[Row]:
    r = report
    return [
        *common_rows(r),
        (
            "faults",
            f"pipeline kill -9 after {r['pipeline_killed_after_processed']} processed; "
            f"broker kill -9 after {r['broker_killed_after_acked']} acked, back in "
            f"{seconds(r['broker_restart_s'])}",
        ),
        (
            "pipeline transactions: committed / aborted on purpose / after an error",
            f"{r['pipeline_commits']} / {r['pipeline_aborts_on_purpose']} / "
            f"{r['pipeline_aborts_after_error']} over {r['pipeline_runs']} runs",
        ),
        (
            "output: read_committed / read_uncommitted",
            f"{r['txn_committed_outputs']} / {r['txn_uncommitted_outputs']} "
            f"({r['txn_aborted_on_purpose_written']} from aborts on purpose, "
            f"{r['txn_left_open_by_kills_written']} from transactions the kills left open)",
        ),
        ("aborted reads (G1a)", f"{r['txn_aborted_reads']} (of {r['txn_tailed']} tailed)"),
        ("lost committed writes", f"{r['txn_lost']} (of {r['txn_inputs_acked']} inputs)"),
        (
            "duplicated committed writes",
            f"{r['txn_duplicated']}"
            + "".join(f"; {e}" for e in r.get("txn_duplicate_examples") or ()),
        ),
        ("reordered within a partition", r["txn_reordered"]),
        (
            "reads past the LSO",
            f"{r['txn_read_past_lso']} (of {r['txn_fetched_batches']} batches fetched)",
        ),
        offsets_row(r),
        ("pipeline / broker exit codes", f"{r['pipeline_exit_code']} / {r['broker_exit_code']}"),
    ]


def passed(report: Report) -> bool:
    return (
        common_passed(report)
        and report["txn_anomalies"] == 0
        and report["pipeline_exit_code"] == 0
        and report["broker_exit_code"] == 0
    )


SCENARIO = Scenario(
    name="txn",
    help="kill -9 a transactional consume-transform-produce pipeline and its broker; "
    "check for aborted reads, lost, duplicated and reordered writes, reads past the LSO",
    description="Start a broker, produce keyed payments, run a pipeline process that "
    "copies each into payments-out inside transactions with its input offsets (some "
    "aborted on purpose), kill -9 the pipeline (restarted with the same transactional "
    "id) and then the broker (restarted on the same data dir) mid-stream, read the "
    "output back and count aborted reads (G1a), lost and duplicated committed writes, "
    "reordering within a partition and reads past the last stable offset. Exit 0 only "
    "if every count is 0.",
    run=run,
    rows=rows,
    passed=passed,
)

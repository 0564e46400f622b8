"""The payments reference app under load: sustained payments/s, latency, rebuild time.

One run on the embedded default (a `tidelog serve` subprocess, wal mode, in a temp dir):

* warm-up: 500 payments (other ids) first, until every projection applied them, so the
  figures are of a running system, not of consumer groups joining.
* sustained rate: the seeded demo workload (about 2.3 events per payment: authorize,
  captures, voids, refunds, chargebacks, holds, plus rejected and retried commands) is
  issued at --rate payments/s through the write model (one transaction per batch), the
  outbox relay and all four projections. The figure is payments issued divided by the
  time from the first command until every projection has applied every event.
* end-to-end latency: for every accepted command, from the moment its write transaction
  committed (taken in this process) to the moment the payment-status projection wrote
  the batch holding its event (`payment_history.visible_at`, stamped by the projection
  as the last statement before its commit; same machine, same wall clock). p50, p99, max.
* projections run as 4 processes by default (`python -m payments.projection_runner`),
  so they do not share this process's GIL with the issuer and the relay; --threads runs
  them as threads, as `tidelog payments demo` does.
* rebuild: the payment_status projection replayed from offset 0 into a fresh read model
  (all events of the run; pick --payments so that is >= 100,000) and compared with the
  live one.

    python -m bench.payments                      # 2000 payments/s, 44,000 payments
    python -m bench.payments --rate 0             # as fast as it goes
    python -m bench.payments --threads            # projections as threads, not processes

(run as a module: `python bench/payments.py` would import this file as `payments`).

Everything shares the machine with the broker; figures only, nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tidelog.payments.app import CommandIssuer, Layout, PaymentsApp, read_status
from tidelog.payments.broker_process import BrokerProcess, free_port
from tidelog.payments.kafka_io import WatermarkReader, create_topics
from tidelog.payments.rebuild import rebuild
from tidelog.payments.verifier import verify_all
from tidelog.payments.workload import make_workload
from tidelog.payments.write_model import WriteModel

CATCH_UP_TIMEOUT_S = 300.0
WARM_UP_PAYMENTS = 500


class Accepted:
    """When each event's command was accepted: right after its write transaction committed."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def on_accepted(self, event_id: str, at: float) -> None:
        self.at[event_id] = at


def visible_latencies(layout: Layout, accepted: dict[str, float]) -> list[float]:
    """Seconds from accepted to the commit of the status batch holding the event
    (`payment_history.visible_at`, stamped by the projection just before its commit)."""
    db = sqlite3.connect(layout.read_db("payment_status"))
    try:
        rows = db.execute("SELECT event_id, visible_at FROM payment_history").fetchall()
    finally:
        db.close()
    return [visible / 1000 - accepted[e] for e, visible in rows if e in accepted]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warm_up(
    layout: Layout, write: WriteModel, watermarks: WatermarkReader, args: argparse.Namespace
) -> None:
    """Warm-up payments (other ids, not measured) until every projection has applied them:
    consumer groups joined, connections open, SQLite files created."""
    planned = make_workload(WARM_UP_PAYMENTS, args.merchants, args.seed + 1, first=10**6)
    CommandIssuer(write, planned, 0).run(threading.Event())
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while not read_status(layout, watermarks).caught_up():
        if time.monotonic() > deadline:
            raise RuntimeError("warm-up did not catch up")
        time.sleep(0.1)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    layout = Layout(root).create()
    broker = BrokerProcess(layout.broker_dir, free_port()).start()
    app: PaymentsApp | None = None
    try:
        create_topics(broker.bootstrap)
        accepted = Accepted()
        app = PaymentsApp(layout, broker.bootstrap, processes=args.processes).start()
        write = WriteModel(layout.write_db)
        watermarks = WatermarkReader(broker.bootstrap)
        warm_up(layout, write, watermarks, args)
        planned = make_workload(args.payments, args.merchants, args.seed)
        issuer = CommandIssuer(write, planned, args.rate, on_accepted=accepted.on_accepted)
        started = time.monotonic()
        issuing = threading.Thread(target=issuer.run, args=(threading.Event(),), daemon=True)
        issuing.start()
        issued_at = caught_up_at = None
        max_lag = 0
        while True:
            time.sleep(0.25)
            status = read_status(layout, watermarks)
            max_lag = max([max_lag] + [p.lag or 0 for p in status.projections])
            if issued_at is None and issuer.finished.is_set():
                issued_at = time.monotonic()
            if issued_at is not None and status.caught_up():
                caught_up_at = time.monotonic()
                break
            if issued_at is not None and time.monotonic() - issued_at > CATCH_UP_TIMEOUT_S:
                raise RuntimeError("projections did not catch up")
            if args.progress:
                print(
                    f"  t={time.monotonic() - started:5.1f}s issued={issuer.counts.issued} "
                    f"outbox={status.outbox_events} unsent={status.unsent} "
                    f"lag={[p.lag for p in status.projections]}",
                    file=sys.stderr,
                )
        exit_codes = app.stop()
        app = None
        write.close()
        high = watermarks.high()
        watermarks.close()
        reports = verify_all(layout.write_db, layout.read_dir, high)
        events = len(accepted.at)  # the measured run's events, warm-up excluded
        rebuilt = rebuild(layout, "payment_status", broker.bootstrap)
        samples = visible_latencies(layout, accepted.at)
        return {
            "rate_target": args.rate,
            "projections_as": "4 processes" if args.processes else "4 threads of the app process",
            "payments": args.payments,
            "commands": issuer.counts.issued,
            "events": events,
            "issue_seconds": round(issued_at - started, 2),
            "total_seconds": round(caught_up_at - started, 2),
            "payments_per_s": round(args.payments / (caught_up_at - started), 1),
            "events_per_s": round(events / (caught_up_at - started), 1),
            "max_lag_seen": max_lag,
            "latency_samples": len(samples),
            "latency_p50_ms": round(statistics.median(samples) * 1000, 1),
            "latency_p99_ms": round(percentile(samples, 0.99) * 1000, 1),
            "latency_max_ms": round(max(samples) * 1000, 1),
            "verified": all(r.ok for r in reports) and not any(exit_codes),
            "rebuild_events": rebuilt.events,
            "rebuild_seconds": round(rebuilt.seconds, 2),
            "rebuild_equal": rebuilt.ok,
        }
    finally:
        if app is not None:  # an error on the way: stop the projection processes too
            app.stop()
        broker.stop()


def cpu_seconds() -> tuple[float, float]:
    """(this process, its finished children: the broker) user+system CPU seconds."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def render(r: dict[str, Any]) -> str:
    rows = [
        ("target rate", f"{r['rate_target']:g} payments/s" if r["rate_target"] else "unpaced"),
        ("projections run as", r["projections_as"]),
        ("payments / commands / events", f"{r['payments']} / {r['commands']} / {r['events']}"),
        ("issuing took", f"{r['issue_seconds']} s"),
        ("first command -> all projections caught up", f"{r['total_seconds']} s"),
        (
            "sustained",
            f"{r['payments_per_s']} payments/s ({r['events_per_s']} events/s into 4 projections)",
        ),
        ("largest projection lag seen", f"{r['max_lag_seen']} events"),
        (
            "command accepted -> visible in payment_status",
            f"p50 {r['latency_p50_ms']} ms, p99 {r['latency_p99_ms']} ms, "
            f"max {r['latency_max_ms']} ms ({r['latency_samples']} events)",
        ),
        ("verifier", "PASS" if r["verified"] else "FAIL"),
        (
            "rebuild payment_status from offset 0",
            f"{r['rebuild_events']} events in {r['rebuild_seconds']} s, "
            + (
                "equal to the live model" if r["rebuild_equal"] else "DIFFERENT from the live model"
            ),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--rate", type=float, default=2000.0, help="payments/s; 0 = unpaced")
    parser.add_argument("--payments", type=int, default=44_000)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--threads",
        dest="processes",
        action="store_false",
        help="projections as threads of the app process (default: one process each)",
    )
    parser.add_argument("--progress", action="store_true", help="a status line every 0.25 s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="tidelog-bench-payments-"))
    try:
        result = run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    app_cpu, broker_cpu = cpu_seconds()
    result["cpu_seconds_app"] = round(app_cpu, 1)
    result["cpu_seconds_children"] = round(broker_cpu, 1)
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(
        f"  CPU seconds: app process {app_cpu:.1f}, child processes (broker"
        f"{', projections' if args.processes else ''}) {broker_cpu:.1f} "
        f"(run + rebuild; 2 cores shared, load average {os.getloadavg()[0]:.2f} at the end)"
    )
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["verified"] and result["rebuild_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`tidelog payments demo`: the whole application end to end, then the verifier's table.

Owns: the demo's directory (a temp dir unless --data-dir; removed unless --keep), the
embedded broker subprocess (unless --bootstrap), the drill (--drill: kill -9 the broker
half-way through and start a replacement with a new node id on the same port and the
same data dir — the WAL volume hand-over; a progress line later, kill -9 the receipts
stage, for its supervisor to restart), progress lines and the exit code.
Guarantees: every process and thread it starts is stopped before it returns; exit 0
only if every read model matches the write model with lag 0 and the receipts stage
wrote exactly one receipt per payment captured in full.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tidelog.payments.app import AppStatus, CommandIssuer, Layout, PaymentsApp, read_status
from tidelog.payments.broker_process import BrokerProcess, BrokerStartError, free_port
from tidelog.payments.kafka_io import BrokerUnavailable, WatermarkReader, create_topics
from tidelog.payments.process_manager import ReceiptsProcess, committed_offsets, read_receipts
from tidelog.payments.projection_runner import lag
from tidelog.payments.verifier import render, save_result, verify_all, verify_receipts
from tidelog.payments.workload import make_workload
from tidelog.payments.write_model import WriteModel

CATCH_UP_TIMEOUT_S = 180.0


class DemoError(Exception):
    """The demo could not reach its verdict (broker did not start, projections stalled)."""


@dataclass(frozen=True)
class DemoOptions:
    payments: int
    merchants: int
    seed: int
    rate: float
    drill: bool
    keep: bool
    bootstrap: str | None
    data_dir: Path | None
    progress_every: float = 1.0


class Narrator:
    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f}s] {message}")


def receipts_lag(bootstrap: str, watermarks: WatermarkReader) -> int | None:
    """Events the receipts stage has not committed yet; None while the broker is away."""
    try:
        return lag(committed_offsets(bootstrap, 2.0), watermarks.high(timeout=2.0))
    except BrokerUnavailable:
        return None


def progress_line(issuer: CommandIssuer, status: AppStatus, receipts: int | None) -> str:
    c = issuer.counts
    lags = " ".join(
        f"{name}={'?' if value is None else value}"
        for name, value in [(p.name, p.lag) for p in status.projections] + [("receipts", receipts)]
    )
    return (
        f"commands {c.issued} (accepted {c.accepted}, rejected {c.rejected + c.malformed}, "
        f"retries answered {c.replayed}) events published "
        f"{status.outbox_events - status.unsent}/{status.outbox_events} lag: {lags}"
    )


def run_demo(opts: DemoOptions, say: Narrator) -> int:
    root = opts.data_dir or Path(tempfile.mkdtemp(prefix="tidelog-payments-"))
    say.say(
        f"demo dir {root}" + (" (kept)" if opts.keep or opts.data_dir else " (removed at the end)")
    )
    layout = Layout(root).create()
    brokers: list[BrokerProcess] = []  # every broker started; the last one is the live one
    try:
        if opts.bootstrap is None:
            brokers.append(BrokerProcess(layout.broker_dir, free_port()).start())
            bootstrap = brokers[-1].bootstrap
            say.say(f"started broker node=1 (wal mode) on {bootstrap} data={layout.broker_dir}")
        else:
            bootstrap = opts.bootstrap
        return _run(opts, say, layout, bootstrap, brokers)
    except (BrokerStartError, BrokerUnavailable, DemoError) as exc:
        print(f"tidelog payments demo: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for broker in brokers:
            if broker.running():
                code = broker.stop()
                say.say(f"stopped broker node={broker.node_id} (SIGTERM) exit={code}")
        if not (opts.keep or opts.data_dir):
            shutil.rmtree(root, ignore_errors=True)


def _run(
    opts: DemoOptions, say: Narrator, layout: Layout, bootstrap: str, brokers: list[BrokerProcess]
) -> int:
    create_topics(bootstrap)
    watermarks = WatermarkReader(bootstrap)
    existing = sum(watermarks.high().values())
    if existing and opts.bootstrap is not None and not opts.data_dir:
        watermarks.close()
        raise DemoError(
            f"payments.events already holds {existing} events from another run; "
            "use a fresh broker or the same --data-dir"
        )
    say.say(
        "topics ready: payments.events (6 partitions), payments.dlq, payments.receipts "
        f"(6 partitions); bootstrap={bootstrap}"
    )
    app = PaymentsApp(layout, bootstrap, receipts=True).start()
    stage = app.receipts
    assert stage is not None
    write = WriteModel(layout.write_db)
    planned = make_workload(opts.payments, opts.merchants, opts.seed)
    issuer = CommandIssuer(write, planned, opts.rate)
    stop = threading.Event()
    issuing = threading.Thread(target=issuer.run, args=(stop,), name="issuer", daemon=True)
    say.say(
        f"issuing {len(planned)} commands for {opts.payments} payments over "
        f"{opts.merchants} merchants (seed {opts.seed}, "
        f"{'unpaced' if not opts.rate else f'{opts.rate:g} payments/s'})"
    )
    issuing.start()
    drilled = stage_drilled = not opts.drill
    deadline: float | None = None
    try:
        while True:
            time.sleep(opts.progress_every)
            status = read_status(layout, watermarks)
            stage_lag = receipts_lag(bootstrap, watermarks)
            say.say(progress_line(issuer, status, stage_lag))
            if drilled and not stage_drilled:  # a progress line after the broker's drill
                _drill_stage(say, stage)
                stage_drilled = True
            if not drilled and issuer.counts.payments_done >= opts.payments // 2:
                _drill(say, brokers)
                drilled = True
            if issuer.finished.is_set() and deadline is None:
                deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
            # A drilled stage counts as caught up only once its supervisor has seen the
            # kill and started the next run: the lag above was read before the kill.
            restarted = not opts.drill or bool(stage.exits)
            if (
                stage_drilled
                and restarted
                and issuer.finished.is_set()
                and status.caught_up()
                and stage_lag == 0
            ):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise DemoError(f"projections did not catch up in {CATCH_UP_TIMEOUT_S:.0f}s")
    finally:
        stop.set()
        issuing.join(30)
        app.stop()
        write.close()
    c = issuer.counts
    relay = app.relay
    assert relay is not None
    say.say(
        f"done: {c.accepted} commands accepted, {c.rejected} rejected, {c.malformed} "
        f"malformed, {c.replayed} retries answered from their idempotency key; "
        f"relay published {relay.published} events ({relay.errors} delivery errors)"
    )
    say.say(
        f"receipts stage: {len(stage.exits)} restarts (exits {stage.exits}), "
        f"last run exit={app.receipts_exit}"
    )
    for reason, count in sorted(c.reasons.items(), key=lambda kv: -kv[1]):
        print(f"  rejected {count:5d}x  {reason}")
    try:
        high = watermarks.high()
    finally:
        watermarks.close()
    reports = verify_all(layout.write_db, layout.read_dir, high)
    receipts = read_receipts(bootstrap)
    reports.append(
        verify_receipts(layout.write_db, receipts, lag(committed_offsets(bootstrap), high))
    )
    print(render(reports))
    save_result(layout.verifier_result, reports)
    if opts.keep or opts.data_dir:
        print(
            f"kept {layout.root}: try `tidelog payments rebuild payment_status "
            f"--data-dir {layout.root}` or `tidelog payments api --data-dir {layout.root}`"
        )
    return 0 if all(r.ok for r in reports) else 1


def _drill_stage(say: Narrator, stage: ReceiptsProcess) -> None:
    pid = stage.child.proc.pid if stage.child.proc is not None else None
    stage.kill()
    say.say(f"DRILL: kill -9 the receipts stage pid={pid}; its supervisor restarts it")


def _drill(say: Narrator, brokers: list[BrokerProcess]) -> None:
    broker = brokers[-1]
    broker.kill()
    killed = time.monotonic()
    say.say(f"DRILL: kill -9 broker node={broker.node_id}")
    replacement = BrokerProcess(broker.data_dir, broker.port, node_id=broker.node_id + 1)
    brokers.append(replacement)
    replacement.start()
    say.say(
        f"DRILL: replacement node={replacement.node_id} ready on the same port with the "
        f"same data dir (the WAL volume) in {time.monotonic() - killed:.1f}s"
    )

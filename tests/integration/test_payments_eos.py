"""The receipts stage against a real broker: exactly one receipt per payment captured in
full, across a SIGKILL of the stage and, separately, of the broker (both durability
modes), with events published twice (the relay's at-least-once) after the restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_payments_parts import WAIT_S, unsent, wait_for
from tidelog.payments import events as ev
from tidelog.payments.app import CommandIssuer, Layout
from tidelog.payments.kafka_io import EVENTS_TOPIC, BrokerUnavailable, WatermarkReader
from tidelog.payments.kafka_io import create_topics as create_payment_topics
from tidelog.payments.outbox_relay import OutboxRelay
from tidelog.payments.process_manager import (
    ReceiptsProcess,
    committed_offsets,
    qualifies,
    read_receipts,
)
from tidelog.payments.projection_runner import lag
from tidelog.payments.verifier import verify_receipts
from tidelog.payments.workload import make_workload
from tidelog.payments.write_model import WriteModel

pytestmark = pytest.mark.integration
PAYMENTS = 2000
BATCH = 50  # small transactions, so a kill lands between many of them


def broker_args(tmp_path: Path, durability: str) -> list[str]:
    return ["--durability", durability, "--object-store", f"file://{tmp_path / 'bucket'}"]


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "app").create()
    model = WriteModel(layout.write_db)
    CommandIssuer(model, make_workload(PAYMENTS, 20, seed=11), rate=0).run(threading.Event())
    model.close()
    return layout


@pytest.fixture
def receipts_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "receipts.log"
    yield path
    if path.exists():  # shown when a test fails
        print(path.read_text()[-4000:])


def publish(layout: Layout, bootstrap: str) -> int:
    relay = OutboxRelay(layout.write_db, bootstrap)
    try:
        wait_for("the outbox published", lambda: relay.pump() >= 0 and unsent(layout) == 0)
    finally:
        relay.close()
    return high_total(bootstrap)


def high_total(bootstrap: str) -> int:
    reader = WatermarkReader(bootstrap)
    try:
        return sum(reader.high().values())
    finally:
        reader.close()


def committed_total(bootstrap: str) -> int:
    try:
        return sum(committed_offsets(bootstrap).values())
    except BrokerUnavailable:
        return -1


def committed_once_answered(bootstrap: str) -> int:
    """The committed total, as soon as a (restarted) broker answers for the group."""
    deadline = time.monotonic() + WAIT_S
    while (total := committed_total(bootstrap)) < 0:
        assert time.monotonic() < deadline, "no broker answered for the group"
        time.sleep(0.05)
    return total


def publish_again(layout: Layout, bootstrap: str, count: int) -> int:
    """What a relay killed between ack and mark does: the first `count` completing
    captures go on the topic a second time."""
    import sqlite3

    db = sqlite3.connect(layout.write_db)
    payloads = [p for (p,) in db.execute("SELECT payload FROM outbox ORDER BY seq")]
    db.close()
    again = [p for p in payloads if qualifies(ev.decode_event(p))][:count]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for payload in again:
        producer.produce(EVENTS_TOPIC, key=ev.decode_event(payload).payment_id, value=payload)
    assert producer.flush(60) == 0
    return len(again)


def assert_exactly_one_receipt_each(layout: Layout, bootstrap: str) -> None:
    reader = WatermarkReader(bootstrap)
    try:
        high = reader.high()
    finally:
        reader.close()
    receipts = read_receipts(bootstrap)
    report = verify_receipts(layout.write_db, receipts, lag(committed_offsets(bootstrap), high))
    assert (report.mismatches, report.lag, report.examples) == (0, 0, [])
    assert report.events_applied > PAYMENTS // 2  # most payments are captured in full


def test_stage_killed_mid_stream_writes_exactly_one_receipt_per_payment(
    tmp_path: Path, layout: Layout, receipts_log: Path
) -> None:
    with BrokerProcess(tmp_path / "broker") as broker:
        create_payment_topics(broker.bootstrap)
        total = publish(layout, broker.bootstrap)
        stage = ReceiptsProcess(broker.bootstrap, receipts_log, batch_messages=BATCH).start()
        try:
            wait_for("the first transactions", lambda: committed_total(broker.bootstrap) > 0)
            stage.kill()
            at_kill = committed_total(broker.bootstrap)
            assert 0 < at_kill < total, "the kill must land mid-stream"
            wait_for("the restarted stage", lambda: len(stage.exits) == 1)
            wait_for("all events", lambda: committed_total(broker.bootstrap) == total)
            # the restarted stage must remember, from the topic, what its predecessor did
            total += publish_again(layout, broker.bootstrap, 20)
            wait_for("the duplicates", lambda: committed_total(broker.bootstrap) == total)
        finally:
            assert stage.stop() == 0
        assert stage.exits == [-9]
        assert_exactly_one_receipt_each(layout, broker.bootstrap)
    starts = [line for line in receipts_log.read_text().splitlines() if "receipts started" in line]
    assert len(starts) == 2 and not starts[1].endswith("receipted=0"), starts


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_broker_killed_mid_stream_leaves_exactly_one_receipt_per_payment(
    tmp_path: Path, layout: Layout, receipts_log: Path, durability: str
) -> None:
    args = broker_args(tmp_path, durability)
    broker = BrokerProcess(tmp_path / "broker", args=args).start()
    try:
        create_payment_topics(broker.bootstrap)
        total = publish(layout, broker.bootstrap)
        stage = ReceiptsProcess(broker.bootstrap, receipts_log, batch_messages=BATCH).start()
        try:
            wait_for("the first transactions", lambda: committed_total(broker.bootstrap) > 0)
            # Judged before the kill: once the broker is back the stage may finish the
            # input before this test's own request is answered.
            at_kill = committed_total(broker.bootstrap)
            broker.kill()
            assert 0 < at_kill < total, "the kill must land mid-stream"
            broker = BrokerProcess(tmp_path / "broker", port=broker.port, args=args).start()
            at_restart = committed_once_answered(broker.bootstrap)
            assert at_restart >= at_kill, "offsets committed before the kill were lost"
            wait_for("all events", lambda: committed_total(broker.bootstrap) == total)
            total += publish_again(layout, broker.bootstrap, 20)
            wait_for("the duplicates", lambda: committed_total(broker.bootstrap) == total)
        finally:
            assert stage.stop() == 0
        # the stage may have exited on a fatal error and been restarted: never a kill
        assert all(code == 1 for code in stage.exits), stage.exits
        assert_exactly_one_receipt_each(layout, broker.bootstrap)
    finally:
        broker.stop()

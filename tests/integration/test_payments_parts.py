"""The payments app's parts against a real broker: the relay killed with SIGKILL mid-publish,
a poison event dead-lettered, and the HTTP read API answering for a known payment.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess, free_port
from tests.integration.tcp_proxy import TcpProxy
from tidelog.payments import events as ev
from tidelog.payments.api import ReadApi, make_server
from tidelog.payments.app import CommandIssuer, Layout, PaymentsApp, read_status
from tidelog.payments.kafka_io import (
    DLQ_TOPIC,
    EVENTS_PARTITIONS,
    EVENTS_TOPIC,
    WatermarkReader,
    create_topics,
)
from tidelog.payments.outbox_relay import OutboxRelay
from tidelog.payments.projection_runner import ProjectionRunner, stored_offsets
from tidelog.payments.projections import LedgerProjection, PaymentStatusProjection
from tidelog.payments.sqlite_db import connect
from tidelog.payments.state_machine import Command
from tidelog.payments.verifier import verify_all, verify_projection
from tidelog.payments.workload import make_workload
from tidelog.payments.write_model import WriteModel, outbox_counts

pytestmark = pytest.mark.integration
WAIT_S = 120.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "broker") as running:
        create_topics(running.bootstrap)
        yield running


def wait_for(what: str, condition: object, timeout: float = WAIT_S) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def read_topic(bootstrap: str, topic: str, partitions: int) -> list[object]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-read", "enable.auto.commit": False}
    )
    try:
        high = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in range(partitions)
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out: list[object] = []
        deadline = time.monotonic() + WAIT_S
        while len(out) < sum(high.values()):
            assert time.monotonic() < deadline
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
        return out
    finally:
        consumer.close()


def unsent(layout: Layout) -> int:
    db = sqlite3.connect(layout.write_db)
    try:
        return outbox_counts(db)[1]
    finally:
        db.close()


def start_relay(layout: Layout, bootstrap: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tidelog.payments.outbox_relay",
            "--db",
            str(layout.write_db),
            "--bootstrap",
            bootstrap,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )


def test_relay_killed_mid_publish_loses_nothing(tmp_path: Path) -> None:
    """Every client reaches the broker through a proxy. Cutting it strands what the relay
    produces next (handed to librdkafka, never acknowledged); then the relay is killed."""
    port = free_port()
    proxy = TcpProxy("127.0.0.1", port)
    advertised = ["--advertised-listener", f"127.0.0.1:{proxy.port}"]
    try:
        with BrokerProcess(tmp_path / "broker", port=port, args=advertised):
            bootstrap = f"127.0.0.1:{proxy.port}"
            create_topics(bootstrap)
            relay_kill_scenario(tmp_path, bootstrap, proxy)
    finally:
        proxy.close()


def relay_kill_scenario(tmp_path: Path, bootstrap: str, proxy: TcpProxy) -> None:
    layout = Layout(tmp_path / "app").create()
    model = WriteModel(layout.write_db)
    planned = make_workload(6000, 20, seed=5)
    half = len(planned) // 2
    CommandIssuer(model, planned[:half], rate=0).run(threading.Event())
    first, _ = outbox_counts(model.db)

    relay = start_relay(layout, bootstrap)
    wait_for("the first half published", lambda: unsent(layout) == 0)
    proxy.cut()  # from now on nothing the relay produces is acknowledged
    CommandIssuer(model, planned[half:], rate=0).run(threading.Event())
    total, _ = outbox_counts(model.db)
    model.close()
    time.sleep(1.0)  # the relay hands the new rows to its producer; they stay in flight
    assert relay.poll() is None
    relay.send_signal(signal.SIGKILL)
    relay.wait(30)
    assert unsent(layout) == total - first > 5000, "the kill must land mid-publish"
    proxy.restore()

    relay = start_relay(layout, bootstrap)
    try:
        wait_for("the outbox to drain", lambda: unsent(layout) == 0)
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(60) == 0

    outbox_ids = {
        e for (e,) in sqlite3.connect(layout.write_db).execute("SELECT event_id FROM outbox")
    }
    published = Counter(
        ev.decode_event(m.value()).event_id  # type: ignore[attr-defined]
        for m in read_topic(bootstrap, EVENTS_TOPIC, EVENTS_PARTITIONS)
    )
    assert set(published) == outbox_ids  # nothing lost, nothing invented

    # the outbox is published; the projections run as their own processes here
    app = PaymentsApp(layout, bootstrap, relay=False, processes=True).start()
    watermarks = WatermarkReader(bootstrap)
    try:
        wait_for("projections", lambda: read_status(layout, watermarks).caught_up())
    finally:
        assert app.stop() == [0, 0, 0, 0]
        high = watermarks.high()
        watermarks.close()
    reports = verify_all(layout.write_db, layout.read_dir, high)
    assert [(r.mismatches, r.lag, r.events_applied) for r in reports] == [(0, 0, total)] * 4
    # whatever was published twice (acked, then killed before marked) was applied once
    assert sum(published.values()) >= total


def test_poison_event_is_dead_lettered_and_the_projection_continues(
    tmp_path: Path, broker: BrokerProcess
) -> None:
    good = [
        ev.Event(
            f"e{i}", ev.PAYMENT_AUTHORIZED, f"p{i}", "m", "c", 100, "EUR", 0, 1, "authorized", False
        )
        for i in range(3)
    ]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for value in (
        ev.encode_event(good[0]),
        b"{not json",
        ev.encode_event(good[1]),
        ev.encode_event(good[1]),
        ev.encode_event(good[2]),
    ):
        producer.produce(EVENTS_TOPIC, key=b"same-key", value=value)
    assert producer.flush(30) == 0

    runner = ProjectionRunner(PaymentStatusProjection(), tmp_path / "status.db", broker.bootstrap)
    try:
        wait_for(
            "five records consumed",
            lambda: runner.poll_once() >= 0 and sum(stored_offsets(runner.db).values()) == 5,
        )
        ids = [r[0] for r in runner.db.execute("SELECT payment_id FROM payment_status ORDER BY 1")]
        assert ids == ["p0", "p1", "p2"]
        assert (runner.duplicates, runner.dead_lettered) == (1, 1)
        [(offset, reason)] = runner.db.execute("SELECT offset, reason FROM dead_letters")
    finally:
        runner.close()
    assert offset == 1 and reason.startswith("not json")

    [letter] = read_topic(broker.bootstrap, DLQ_TOPIC, 1)
    headers = dict(letter.headers())  # type: ignore[attr-defined]
    assert letter.value() == b"{not json"  # type: ignore[attr-defined]
    assert headers["reason"].decode().startswith("not json")
    assert headers["projection"] == b"payment_status"
    assert headers["source"].decode().endswith("/1")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_http_api_answers_for_a_known_payment(tmp_path: Path, broker: BrokerProcess) -> None:
    layout = Layout(tmp_path / "app")
    app = PaymentsApp(layout, broker.bootstrap).start()
    model = WriteModel(layout.write_db)
    model.handle_many(
        [
            Command("authorize", "k1", "pay-1", "m-7", "c-1", 2500, "EUR"),
            Command("capture", "k2", "pay-1", amount=2000),
            Command("refund", "k3", "pay-1", amount=500),
        ]
    )
    model.close()
    api = ReadApi(layout, broker.bootstrap)
    server = make_server(api, "127.0.0.1", 0)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        wait_for(
            "the payment in the read models",
            lambda: (
                json.loads(get(f"{base}/api/lag")[1])["projections"][0]["events_applied"] == 3
                and all(p["lag"] == 0 for p in json.loads(get(f"{base}/api/lag")[1])["projections"])
            ),
        )
        status, body = get(f"{base}/api/payments/pay-1")
        payment = json.loads(body)
        assert status == 200
        assert (payment["status"], payment["captured"], payment["refunded"]) == (
            "partially_refunded",
            2000,
            500,
        )
        assert [h["type"] for h in payment["history"]] == [
            ev.PAYMENT_AUTHORIZED,
            ev.PAYMENT_CAPTURED,
            ev.REFUND_INITIATED,
        ]
        status, body = get(f"{base}/api/merchants/m-7/balance")
        assert status == 200 and json.loads(body)["balances"][0]["net"] == 1500
        status, body = get(f"{base}/api/ledger")
        assert status == 200 and json.loads(body)["totals"]["EUR"]["balanced"] is True
        assert get(f"{base}/api/payments/pay-2") == (
            404,
            json.dumps({"error": "unknown payment payment_id=pay-2"}, indent=1),
        )
        assert get(f"{base}/api/payments/bad%20id")[0] == 400
        status, page = get(f"{base}/")
        assert status == 200 and 'http-equiv="refresh"' in page
        assert '<a href="/api/payments/pay-1">pay-1</a>' in page
        assert '<a href="/api/merchants/m-7/settlement">settlement</a>' in page
        assert "&quot;" not in page  # health is a table, not escaped JSON (issue 16)
    finally:
        server.shutdown()
        server.server_close()
        api.close()
        app.stop()


def test_projection_killed_mid_run_resumes_from_its_own_offsets(
    tmp_path: Path, broker: BrokerProcess
) -> None:
    """SIGKILL a projection process between batches; the new one seeks to the offsets in
    its read model, so it sees no event twice (duplicates=0), and the ledger verifies."""
    layout = Layout(tmp_path / "app").create()
    model = WriteModel(layout.write_db)
    CommandIssuer(model, make_workload(3000, 20, seed=9), rate=0).run(threading.Event())
    total, _ = outbox_counts(model.db)
    model.close()
    relay = OutboxRelay(layout.write_db, broker.bootstrap)
    wait_for("the outbox published", lambda: relay.pump() >= 0 and unsent(layout) == 0)
    relay.close()

    db_path = layout.read_db("ledger")
    log_path = tmp_path / "ledger.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tidelog.payments.projection_runner",
                    "--projection",
                    "ledger",
                    "--db",
                    str(db_path),
                    "--bootstrap",
                    broker.bootstrap,
                    "--batch-messages",
                    "100",
                ],
                stdout=log,
                stderr=log,
            )

    def consumed() -> int:
        if not db_path.exists():
            return 0
        read = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return sum(stored_offsets(read).values())
        except sqlite3.OperationalError:  # tables not created yet
            return 0
        finally:
            read.close()

    first = start()
    wait_for("the first batches", lambda: consumed() > 0)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    at_kill = consumed()
    assert 0 < at_kill < total, "the kill must land mid-run"

    second = start()
    try:
        wait_for("the rest", lambda: consumed() == total)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    assert f"applied={total - at_kill} duplicates=0" in log_path.read_text()

    write = sqlite3.connect(layout.write_db)
    read = connect(db_path, readonly=True)
    try:
        report = verify_projection(write, LedgerProjection(), read, {})
    finally:
        read.close()
        write.close()
    assert (report.mismatches, report.events_applied) == (0, total)

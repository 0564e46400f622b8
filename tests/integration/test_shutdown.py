"""Shutdown ends within --shutdown-timeout-ms, even when the bucket cannot be reached.

The broker's S3 server (moto) sits behind a TCP proxy that the test cuts, so the final
upload can never happen. A signal must still end the process within the bound (a
second signal keeps the deadline), and the log must say what was left behind: in `wal`
mode the acknowledged records stay in the WAL and the next start on the same data dir
replays and uploads them; in `object` mode they were never acknowledged.

The bound is passed as TIDELOG_SHUTDOWN_TIMEOUT_MS, so a broker that does not know the
option runs the same test (and waits forever for in-flight produce requests).
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.broker_process import BrokerProcess
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_clients import create_topic
from tests.integration.test_cluster import wait_until
from tests.integration.test_crash_recovery import AckedLoad, assert_nothing_acked_lost_or_duplicated
from tests.integration.test_s3_broker import s3_args
from tidelog.broker.processes.s3_servers import S3Server

pytestmark = pytest.mark.integration

EXIT_SHUTDOWN_TIMED_OUT = 4
GENEROUS_S = 120  # the bound under test is a few seconds; this only ends a hung test


def wait_for_exit(broker: BrokerProcess) -> int:
    assert broker.proc is not None
    try:
        return broker.proc.wait(timeout=GENEROUS_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"broker still running after shutdown\n{broker.output()}") from None


def start_cut_off(
    tmp_path: Path, moto: S3Server, extra: list[str]
) -> tuple[BrokerProcess, TcpProxy, AckedLoad, list[str], dict[str, str]]:
    """A broker under load whose object store was just cut away under it."""
    bucket = moto.create_bucket()
    host, port = moto.endpoint_url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    args = [*s3_args(moto, bucket, proxy.url), *extra]
    env = {**moto.env(), "TIDELOG_SHUTDOWN_TIMEOUT_MS": "3000"}
    broker = BrokerProcess(tmp_path / "a", args=args, env=env).start()
    create_topic(broker, "stuck", partitions=3)
    load = AckedLoad(broker.bootstrap, "stuck").start()
    wait_until("acks", lambda: load.total() > 500)
    proxy.cut()
    wait_until("a failed upload", lambda: "upload failed" in broker.output())
    return broker, proxy, load, args, env


def test_object_mode_shutdown_ends_within_its_timeout_with_the_store_unreachable(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    broker, proxy, load, args, env = start_cut_off(tmp_path, moto_s3, ["--durability", "object"])
    try:
        # Produce requests now wait for an upload that cannot happen. SIGINT, then
        # SIGTERM while it shuts down, as in the report.
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGINT)
        wait_until("shutdown to start", lambda: "shutdown requested" in broker.output())
        broker.proc.send_signal(signal.SIGTERM)
        assert wait_for_exit(broker) == EXIT_SHUTDOWN_TIMED_OUT
        out = broker.output()
        assert "signal received again during shutdown" in out
        assert "shutdown timed out" in out
        assert "never acknowledged" in out
    finally:
        broker.kill()
        load.stop()
        proxy.restore()
    try:
        with BrokerProcess(tmp_path / "a", port=broker.port, args=args, env=env) as again:
            assert_nothing_acked_lost_or_duplicated(load, again.bootstrap)
    finally:
        proxy.close()


def test_wal_mode_shutdown_ends_within_its_timeout_and_the_next_start_replays_the_wal(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    # A short lease: acks from the WAL stop soon after the cut, so requests hang too.
    broker, proxy, load, args, env = start_cut_off(
        tmp_path, moto_s3, ["--session-timeout-ms", "1000"]
    )
    try:
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGTERM)
        assert wait_for_exit(broker) == EXIT_SHUTDOWN_TIMED_OUT
        out = broker.output()
        assert "shutdown timed out" in out
        assert "stays in the wal for the next start" in out
        assert "partitions=" in out and "bytes=" in out
    finally:
        broker.kill()
        load.stop()
        proxy.restore()
    try:
        with BrokerProcess(tmp_path / "a", port=broker.port, args=args, env=env) as again:
            assert_nothing_acked_lost_or_duplicated(load, again.bootstrap)
            assert re.search(r"wal_batches_replayed=[1-9]", again.output()), again.output()
    finally:
        proxy.close()


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_a_deleted_topics_records_do_not_hold_up_shutdown(tmp_path: Path, durability: str) -> None:
    # Records of a topic deleted before they were uploaded will never be uploaded; the
    # final upload once waited for them until the shutdown deadline (exit code 4).
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    broker = BrokerProcess(
        tmp_path / "data", args=["--durability", durability, "--flush-interval-ms", "60000"]
    ).start()
    create_topic(broker, "doomed")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "1"})
    for _ in range(2000):
        producer.produce("doomed", b"x" * 1000)
    producer.flush(0 if durability == "object" else 30)  # object mode acks after upload
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics(["doomed"])["doomed"].result(30)
    producer.purge()
    assert broker.stop() == 0, broker.output()[-3000:]
    assert "shutdown timed out" not in broker.output()

"""The broker on real S3 servers (moto's server and SeaweedFS), started by fixtures.

Data produced through the broker lands in the bucket; a replacement broker with an
empty data dir serves it; an object-store outage does not stop wal-mode produce and
loses nothing once the store is back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_clients import consume_all, create_topic
from tests.integration.test_cluster import leaders, wait_until
from tidelog.broker.processes.s3_servers import S3Server

pytestmark = pytest.mark.integration


def s3_args(server: S3Server, bucket: str, endpoint: str | None = None) -> list[str]:
    return [
        "--object-store",
        f"s3://{bucket}/cluster-a",
        "--s3-endpoint",
        endpoint or server.endpoint_url,
    ]


def produce_values(bootstrap: str, topic: str, values: range) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in values:
        producer.produce(topic, value=str(i).encode())
    assert producer.flush(30) == 0


@pytest.fixture(params=["moto", "seaweedfs"])
def s3(request: pytest.FixtureRequest) -> S3Server:
    server: S3Server = request.getfixturevalue(
        "moto_s3" if request.param == "moto" else "seaweed_s3"
    )
    return server


def test_object_mode_replacement_serves_everything_from_the_bucket(
    tmp_path: Path, s3: S3Server
) -> None:
    bucket = s3.create_bucket()
    args = [*s3_args(s3, bucket), "--durability", "object"]
    first = BrokerProcess(tmp_path / "a", args=args, env=s3.env()).start()
    create_topic(first, "ledger")
    produce_values(first.bootstrap, "ledger", range(300))
    first.kill()
    replace = [*args, "--replace", "1"]
    with BrokerProcess(tmp_path / "b", node_id=2, args=replace, env=s3.env()) as second:
        got = consume_all(second, "ledger", 0, 300)
        assert [int(g[2] or b"-1") for g in got] == list(range(300))
    client = s3.client()
    try:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    finally:
        client.close()
    assert any(k.startswith("cluster-a/log/") for k in keys)  # the metadata log
    assert any(k.startswith("cluster-a/streams/") for k in keys)  # the brokers' streams


def test_wal_mode_keeps_acking_through_an_outage_and_uploads_afterwards(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    bucket = moto_s3.create_bucket()
    host, port = moto_s3.endpoint_url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    try:
        args = s3_args(moto_s3, bucket, proxy.url)
        broker = BrokerProcess(tmp_path / "a", args=args, env=moto_s3.env()).start()
        create_topic(broker, "outage")
        produce_values(broker.bootstrap, "outage", range(100))
        proxy.cut()
        produce_values(broker.bootstrap, "outage", range(100, 200))  # acked from the WAL
        deadline = time.monotonic() + 30
        while "upload failed" not in broker.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "upload failed" in broker.output()
        proxy.restore()
        while "uploads resumed" not in broker.output() and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        assert "uploads resumed" in broker.output()
        broker.kill()
        # The WAL is left behind: everything must have reached the bucket.
        replace = [*args, "--replace", "1"]  # waits out node 1's lease, then serves
        with BrokerProcess(tmp_path / "b", node_id=2, args=replace, env=moto_s3.env()) as second:
            got = consume_all(second, "outage", 0, 200)
            assert [int(g[2] or b"-1") for g in got] == list(range(200))
    finally:
        proxy.close()


def high_watermark(broker: BrokerProcess, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "hw"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition("shared", partition), 10)[1])
    finally:
        consumer.close()


def test_two_brokers_on_one_s3_bucket_share_partitions_and_fail_over(
    tmp_path: Path, s3: S3Server
) -> None:
    bucket = s3.create_bucket()
    args = [*s3_args(s3, bucket), "--durability", "object", "--session-timeout-ms", "1500"]
    one = BrokerProcess(tmp_path / "a", node_id=1, args=args, env=s3.env()).start()
    two = BrokerProcess(tmp_path / "b", node_id=2, args=args, env=s3.env()).start()
    try:
        boot = f"{one.bootstrap},{two.bootstrap}"
        create_topic(one, "shared", partitions=8)
        wait_until("both to lead", lambda: set(leaders(boot, "shared")[1].values()) == {1, 2})
        produce_values(boot, "shared", range(400))
        two.kill()
        wait_until(
            "node 1 to lead all", lambda: set(leaders(one.bootstrap, "shared")[1].values()) == {1}
        )
        got = [g for p in range(8) for g in consume_all(one, "shared", p, high_watermark(one, p))]
        assert sorted(int(g[2] or b"-1") for g in got) == list(range(400))
    finally:
        one.stop()
        two.kill()

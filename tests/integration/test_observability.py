"""`--http-listen`: /metrics follows a real workload, /healthz and /readyz follow the
broker's life (start-up, serving, shutdown), and the broker's logs say where it listens.

Every broker here is the real process; metrics are scraped over HTTP and parsed with
prometheus-client's own parser.
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, produce_request
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_cluster import wait_until
from tests.integration.test_s3_broker import s3_args
from tests.integration.topic_requests import create_topic
from tidelog.broker.processes import ChildProcess
from tidelog.broker.processes.s3_servers import S3Server
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(broker: BrokerProcess) -> Samples:
    status, text = get(f"{broker.http_url}/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def produce(bootstrap: str, topic: str, partition: int, batch: bytes) -> ErrorCode:
    with RawClient(bootstrap) as client:
        answer = client.request(produce_request(topic, partition, batch))
    return ErrorCode(answer.responses[0].partition_responses[0].error_code)


def test_metrics_follow_produce_consume_and_group_lag(
    tmp_path: Path, brokers: list[BrokerProcess]
) -> None:
    broker = BrokerProcess(tmp_path / "a").start()
    brokers.append(broker)
    topic = "metered"
    batches = [
        build_batch([Record(0, 1_700_000_000_000, b"k", b"v" * (10 + i * 7))]) for i in range(20)
    ]
    assert create_topic(broker.bootstrap, topic, 1)[0] == ErrorCode.none
    for batch in batches:
        assert produce(broker.bootstrap, topic, 0, batch) == ErrorCode.none
    assert produce(broker.bootstrap, topic, 7, batches[0]) == ErrorCode.unknown_topic_or_partition

    samples = scrape(broker)
    # Bytes in are exactly the record batches the client sent and the broker acked.
    assert value(samples, "tidelog_bytes_in_total", topic=topic) == sum(map(len, batches))
    assert value(samples, "tidelog_requests_total", api="Produce", error="NONE") == len(batches)
    produce_errors = value(
        samples, "tidelog_requests_total", api="Produce", error="UNKNOWN_TOPIC_OR_PARTITION"
    )
    assert produce_errors == 1
    assert value(samples, "tidelog_request_duration_seconds_count", api="Produce") == 21
    assert value(samples, "tidelog_partitions_owned") == 1
    assert value(samples, "tidelog_cluster_members") == 1
    assert value(samples, "tidelog_ready") == 1
    assert value(samples, "tidelog_wal_fsync_duration_seconds_count") >= 1
    assert value(samples, "tidelog_wal_bytes_total") >= sum(map(len, batches))

    # Uploads: the data reaches the bucket in commits, counted as object-store PUTs.
    def uploaded() -> bool:
        s = scrape(broker)
        return (
            value(s, "tidelog_unuploaded_bytes") == 0
            and value(
                s,
                "tidelog_object_store_requests_total",
                op="put_if_absent",
                object="commit",
                outcome="ok",
            )
            >= 1
        )

    wait_until("the produced bytes to be uploaded", uploaded)

    # A group that has consumed half the partition lags by the other half, then by none.
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id="metered-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        got: list[int] = []
        while len(got) < len(batches):
            for records in consumer.poll(timeout_ms=1000).values():
                got += [r.offset for r in records]
        consumer.commit({tp: OffsetAndMetadata(8, None, -1)})
        lag = ("tidelog_consumer_group_lag", "metered-group", topic)
        labels = {"group": lag[1], "topic": lag[2], "partition": "0"}
        assert value(scrape(broker), lag[0], **labels) == len(batches) - 8
        consumer.commit({tp: OffsetAndMetadata(len(batches), None, -1)})
        assert value(scrape(broker), lag[0], **labels) == 0
    finally:
        consumer.close()
    samples = scrape(broker)
    # Everything was fetched at least once (a consumer may fetch a batch twice).
    assert value(samples, "tidelog_bytes_out_total", topic=topic) >= sum(map(len, batches))
    assert value(samples, "tidelog_requests_total", api="OffsetCommit", error="NONE") == 2

    status, body = get(f"{broker.http_url}/api/status")
    assert status == 200
    report = json.loads(body)
    (topic_row,) = [t for t in report["topics"] if t["name"] == topic]
    assert topic_row["partitions"][0]["end_offset"] == len(batches)
    (group_row,) = [g for g in report["groups"] if g["group"] == "metered-group"]
    assert group_row["lag"] == 0


def test_health_and_readiness_across_start_up_serving_and_shutdown(
    tmp_path: Path, moto_s3: S3Server
) -> None:
    """The bucket hangs (a proxy holds its connections) while the broker starts and while
    it stops: the process answers /healthz all along, /readyz only while it serves."""
    bucket = moto_s3.create_bucket()
    host, port = moto_s3.endpoint_url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    broker = BrokerProcess(
        tmp_path / "a", args=s3_args(moto_s3, bucket, proxy.url), env=moto_s3.env()
    )
    try:
        proxy.hold()
        broker.data_dir.mkdir(parents=True)
        broker.command = broker.serve_command()
        ChildProcess.start(broker)  # not BrokerProcess.start: it would wait for ready

        def healthy() -> bool:
            try:
                return get(f"{broker.http_url}/healthz")[0] == 200
            except OSError:
                return False

        wait_until("/healthz to answer during start-up", healthy, timeout=60)
        status, body = get(f"{broker.http_url}/readyz")
        assert status == 503 and json.loads(body)["status"].startswith("starting"), body

        proxy.release()
        broker.wait_ready(broker.ready, 60)
        assert get(f"{broker.http_url}/readyz") == (200, json.dumps({"status": "ready"}))

        proxy.cut()  # the pooled connections go; new ones wait
        proxy.hold()
        proxy.restore()
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGTERM)
        wait_until("/readyz to say stopping", lambda: get(f"{broker.http_url}/readyz")[0] == 503)
        status, body = get(f"{broker.http_url}/readyz")
        assert json.loads(body)["status"] == "stopping", body
        assert get(f"{broker.http_url}/healthz")[0] == 200  # still serving HTTP
        proxy.release()
        assert broker.stop() == 0
    finally:
        if broker.running():
            broker.kill()
        proxy.close()
    assert not healthy()  # the HTTP listener closed with the process


def test_http_listen_off_serves_no_http_and_a_bad_value_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    broker = BrokerProcess(tmp_path / "a", args=["--http-listen", "off"]).start()
    try:
        try:
            get(f"{broker.http_url}/healthz")
        except OSError:
            pass
        else:
            raise AssertionError("--http-listen off still served HTTP")
        assert "http listening" not in broker.output()
    finally:
        broker.stop()
    proc = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "serve", "--data-dir", str(tmp_path / "b"),
         "--http-listen", "nowhere"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--http-listen" in proc.stderr

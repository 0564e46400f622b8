"""Fetch semantics: long polling, min_bytes, size limits, out-of-range offsets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, fetch_request
from tests.integration.test_clients import create_topic, topic_name
from tidelog.protocol.batch import iter_batches
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import decode_records

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("fetch") / "data") as b:
        yield b


def produce(broker: BrokerProcess, topic: str, values: list[bytes], linger_ms: int = 0) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": linger_ms})
    for v in values:
        producer.produce(topic, value=v, partition=0)
        if linger_ms == 0:
            producer.flush(10)
    assert producer.flush(30) == 0


def test_long_poll_returns_as_soon_as_data_arrives(broker: BrokerProcess) -> None:
    topic = topic_name("poll")
    create_topic(broker, topic)
    result: dict[str, Any] = {}

    def poll() -> None:
        # A 60 s max_wait, but the socket gives up after 20 s: only a wake-up on new
        # data (not the deadline) can make this pass.
        with RawClient(broker.bootstrap, timeout=20) as c:
            result["r"] = c.request(fetch_request(topic, [(0, 0)], max_wait_ms=60_000, min_bytes=1))

    t = threading.Thread(target=poll)
    t.start()
    produce(broker, topic, [b"wake up"])
    t.join(30)
    part = result["r"].responses[0].partitions[0]
    assert [r.value for r in decode_records(part.records)] == [b"wake up"]


def test_min_bytes_zero_answers_at_once_with_nothing(broker: BrokerProcess) -> None:
    topic = topic_name("empty")
    create_topic(broker, topic)
    with RawClient(broker.bootstrap, timeout=20) as c:
        r = c.request(fetch_request(topic, [(0, 0)], max_wait_ms=60_000, min_bytes=0))
    part = r.responses[0].partitions[0]
    assert (part.error_code, part.high_watermark, part.records) == (0, 0, b"")


def test_partition_max_bytes_returns_whole_batches_and_at_least_one(
    broker: BrokerProcess,
) -> None:
    topic = topic_name("limits")
    create_topic(broker, topic)
    produce(broker, topic, [b"x" * 1000 for _ in range(20)])  # 20 batches of ~1 KB
    with RawClient(broker.bootstrap) as c:
        small = c.request(fetch_request(topic, [(0, 0)], partition_max_bytes=3000))
        tiny = c.request(fetch_request(topic, [(0, 0)], partition_max_bytes=1))
    small_records = small.responses[0].partitions[0].records
    assert 1 < len(list(iter_batches(small_records))) <= 3
    assert len(small_records) <= 3000
    tiny_records = tiny.responses[0].partitions[0].records
    assert len(list(iter_batches(tiny_records))) == 1  # progress even when over the limit


def test_fetch_from_the_middle_of_a_batch_returns_that_batch(broker: BrokerProcess) -> None:
    topic = topic_name("middle")
    create_topic(broker, topic)
    produce(broker, topic, [b"%d" % i for i in range(10)], linger_ms=200)  # one batch
    with RawClient(broker.bootstrap) as c:
        r = c.request(fetch_request(topic, [(0, 4)]))
    offsets = [rec.offset for rec in decode_records(r.responses[0].partitions[0].records)]
    assert offsets[0] <= 4 <= offsets[-1] and offsets[-1] == 9


def test_offset_past_the_end_is_out_of_range(broker: BrokerProcess) -> None:
    topic = topic_name("range")
    create_topic(broker, topic)
    produce(broker, topic, [b"only"])
    with RawClient(broker.bootstrap) as c:
        r = c.request(fetch_request(topic, [(0, 5)]))
    assert r.responses[0].partitions[0].error_code == ErrorCode.offset_out_of_range


def test_unknown_partition_in_fetch(broker: BrokerProcess) -> None:
    topic = topic_name("unknown")
    create_topic(broker, topic)
    with RawClient(broker.bootstrap) as c:
        r = c.request(fetch_request(topic, [(7, 0)]))
    assert r.responses[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


def test_shutdown_answers_long_polls_at_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIGTERM must not wait out a consumer's max_wait: the fetch is answered (empty)
    and the broker exits 0. The client gives up after 20 s; the poll asks for 60 s."""
    proc = BrokerProcess(tmp_path_factory.mktemp("stop") / "data").start()
    topic = topic_name("stop")
    create_topic(proc, topic)
    result: dict[str, Any] = {}
    started = threading.Event()

    def poll() -> None:
        with RawClient(proc.bootstrap, timeout=20) as c:
            started.set()
            result["r"] = c.request(fetch_request(topic, [(0, 0)], max_wait_ms=60_000, min_bytes=1))

    t = threading.Thread(target=poll)
    t.start()
    started.wait(10)
    time.sleep(0.5)  # let the request reach the broker and start its long poll
    assert proc.stop() == 0
    t.join(30)
    part = result["r"].responses[0].partitions[0]
    assert (part.error_code, part.records) == (0, b"")

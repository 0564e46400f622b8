"""Fetch v13-16 by topic id (KIP-516) and KIP-951 leader hints, over TCP on real brokers.

A single broker serves records produced by librdkafka to a raw Fetch naming the topic
by its id, and answers an id no topic has with UNKNOWN_TOPIC_ID and an empty record
set. Two brokers on one bucket: a Fetch v16 / Produce v10-11 sent to the broker that
does not own the partition is answered NOT_LEADER_OR_FOLLOWER with the owner as
`current_leader` and the owner's address in `node_endpoints`, the same owner, epoch and
port that Metadata names; older versions carry no hint.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, topic_id
from tests.integration.test_clients import create_topic
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build
from tidelog.protocol.records import Record, build_batch, decode_records

pytestmark = pytest.mark.integration

ZERO = datetime.timedelta(0)
TEN_S = datetime.timedelta(seconds=10)


def fetch(version: int, tid: uuid.UUID, partition: int, *, offset: int = 0) -> Any:
    m = load_payload_module(1, version, EntityType.request)
    part = build(
        m,
        "FetchPartition",
        partition=partition,
        current_leader_epoch=-1,
        fetch_offset=offset,
        last_fetched_epoch=-1,
        log_start_offset=-1,
        partition_max_bytes=1 << 20,
    )
    return build(
        m,
        "FetchRequest",
        replica_id=-1,
        max_wait=ZERO,
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=(build(m, "FetchTopic", topic_id=tid, partitions=(part,)),),
        forgotten_topics_data=(),
        rack_id="",
    )


def produce(version: int, topic: str, partition: int) -> Any:
    m = load_payload_module(0, version, EntityType.request)
    records = build_batch([Record(0, 1_700_000_000_000, b"k", b"v")])
    part = build(m, "PartitionProduceData", index=partition, records=records)
    return build(
        m,
        "ProduceRequest",
        transactional_id=None,
        acks=-1,
        timeout=TEN_S,
        topic_data=(build(m, "TopicProduceData", name=topic, partition_data=(part,)),),
    )


def send(broker: BrokerProcess, request: Any) -> Any:
    with RawClient(broker.bootstrap) as client:
        return client.request(request)


def wait_for(what: str, probe: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """Ask until the answer is what we wait for; the deadline only ends a test whose
    answer never comes, nothing is measured against it."""
    deadline = time.monotonic() + 60
    while True:
        answer = probe()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"{what}: still {answer}"
        time.sleep(0.05)


# -- one broker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("fetch-ids") / "data") as b:
        create_topic(b, "by-id", partitions=1)
        producer = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(5):
            producer.produce("by-id", value=b"r%d" % i, partition=0)
        assert producer.flush(30) == 0
        yield b


@pytest.mark.parametrize("version", [13, 14, 15, 16])
def test_fetch_by_topic_id_returns_the_records_produced(
    broker: BrokerProcess, version: int
) -> None:
    tid = topic_id(broker.bootstrap, "by-id")
    response = send(broker, fetch(version, tid, 0))
    (topic,) = response.responses
    (p,) = topic.partitions
    assert (topic.topic_id, p.error_code, p.high_watermark) == (tid, ErrorCode.none, 5)
    assert [r.value for r in decode_records(p.records)] == [b"r%d" % i for i in range(5)]


@pytest.mark.parametrize("version", [13, 14, 15, 16])
def test_fetch_of_an_unknown_topic_id_answers_unknown_topic_id(
    broker: BrokerProcess, version: int
) -> None:
    stranger = uuid.uuid4()
    response = send(broker, fetch(version, stranger, 0))
    (topic,) = response.responses
    (p,) = topic.partitions
    assert topic.topic_id == stranger
    # Empty, never null: librdkafka cannot parse a null record set.
    assert (p.error_code, p.high_watermark, p.records) == (ErrorCode.unknown_topic_id, -1, b"")


# -- two brokers on one bucket ---------------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[BrokerProcess]]:
    tmp = tmp_path_factory.mktemp("hints")
    args = ["--object-store", f"file://{tmp / 'bucket'}"]
    a = BrokerProcess(tmp / "node1", node_id=1, args=args)
    b = BrokerProcess(tmp / "node2", node_id=2, args=args)
    with a, b:
        create_topic(a, "moved", partitions=4)
        yield [a, b]


def placement(brokers: list[BrokerProcess]) -> dict[int, tuple[int, int]]:
    """partition -> (leader, epoch) as Metadata v12 says, once every partition has one."""
    m = load_payload_module(3, 12, EntityType.request)

    def ask() -> Any:
        request = build(
            m,
            "MetadataRequest",
            topics=(build(m, "MetadataRequestTopic", name="moved", topic_id=None),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
        return send(brokers[0], request)

    # Placement settles once each broker leads some partitions (docs/cluster.md); with
    # no broker joining or leaving after that, nothing moves during the test.
    answer = wait_for(
        "both brokers to lead partitions",
        ask,
        lambda r: {p.leader_id for p in r.topics[0].partitions} == {1, 2},
    )
    return {p.partition_index: (p.leader_id, p.leader_epoch) for p in answer.topics[0].partitions}


def elsewhere(brokers: list[BrokerProcess]) -> tuple[int, int, int, BrokerProcess, BrokerProcess]:
    """(partition, leader id, epoch, its owner, a broker that does not own it)."""
    partition, (leader, epoch) = next(iter(sorted(placement(brokers).items())))
    owner = next(b for b in brokers if b.node_id == leader)
    other = next(b for b in brokers if b.node_id != leader)
    return partition, leader, epoch, owner, other


def hinted(answer: Any, owner: BrokerProcess, leader: int, epoch: int) -> bool:
    """Whether the answer's hint names `owner` (leader id, epoch, address)."""
    ends = {(e.node_id, e.host, e.port) for e in answer.node_endpoints}
    return (answer.leader, answer.code) == ((leader, epoch), 6) and ends == {
        (leader, "127.0.0.1", owner.port)
    }


class Hint:
    """The one partition of a Fetch or Produce answer: its code, current_leader and the
    response's node_endpoints."""

    def __init__(self, code: int, leader: Any, node_endpoints: Any) -> None:
        self.code = int(code)
        self.leader = (leader.leader_id, leader.leader_epoch) if leader is not None else None
        self.node_endpoints = node_endpoints

    def __repr__(self) -> str:
        return f"Hint(code={self.code} leader={self.leader} ends={self.node_endpoints})"


def fetch_hint(broker: BrokerProcess, version: int, tid: uuid.UUID, partition: int) -> Hint:
    r = send(broker, fetch(version, tid, partition))
    (p,) = r.responses[0].partitions
    assert p.records == b""  # an error partition: empty, never null
    return Hint(p.error_code, getattr(p, "current_leader", None), getattr(r, "node_endpoints", ()))


def produce_hint(broker: BrokerProcess, version: int, partition: int) -> Hint:
    r = send(broker, produce(version, "moved", partition))
    (p,) = r.responses[0].partition_responses
    return Hint(p.error_code, getattr(p, "current_leader", None), getattr(r, "node_endpoints", ()))


def test_fetch_v16_to_a_broker_that_does_not_own_the_partition_names_the_owner(
    pair: list[BrokerProcess],
) -> None:
    partition, leader, epoch, owner, other = elsewhere(pair)
    tid = topic_id(owner.bootstrap, "moved")
    wait_for(
        "a hint naming the owner",
        lambda: fetch_hint(other, 16, tid, partition),
        lambda h: hinted(h, owner, leader, epoch),
    )
    # v13-15 carry no hint (Kafka hints from v16), only the error.
    for version in (13, 15):
        h = fetch_hint(other, version, tid, partition)
        assert (h.code, h.leader, h.node_endpoints) == (6, (-1, -1), ())
    # The owner serves it.
    served = send(owner, fetch(16, tid, partition)).responses[0].partitions[0]
    assert served.error_code == ErrorCode.none


@pytest.mark.parametrize("version", [10, 11])
def test_produce_v10_to_a_broker_that_does_not_own_the_partition_names_the_owner(
    pair: list[BrokerProcess], version: int
) -> None:
    partition, leader, epoch, owner, other = elsewhere(pair)
    wait_for(
        "a hint naming the owner",
        lambda: produce_hint(other, version, partition),
        lambda h: hinted(h, owner, leader, epoch),
    )


def test_produce_v9_to_a_broker_that_does_not_own_the_partition_has_no_hint(
    pair: list[BrokerProcess],
) -> None:
    partition, _, _, _, other = elsewhere(pair)
    h = produce_hint(other, 9, partition)
    assert (h.code, h.leader, h.node_endpoints) == (6, None, ())

"""TxnOffsetCommit when the group's coordinator is not the transaction's.

Two brokers on one bucket; the transactional id's slot is owned by one, the consumer
group's by the other. The group coordinator asks the transaction coordinator whether
the group is in the producer's open transaction (AddPartitionsToTxn v4 verify_only,
naming the group by its `__consumer_offsets` partition) before it stages offsets:
- a live producer's send_offsets_to_transaction commits the group's offsets with its
  transaction (librdkafka);
- a fenced producer's TxnOffsetCommit (an older epoch of the same producer id) is
  refused, and the live transaction's commit does not carry its offsets along.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_clients import create_topic, topic_name
from tests.integration.test_cluster import bootstrap, leaders, wait_until
from tests.integration.test_group_failover import committed
from tests.integration.test_txn_durability import (
    DEADLINE_S,
    find_coordinator,
    group_metadata,
    produce_txn_records,
    txn_producer,
)
from tests.integration.txn_sweep import _init, req
from tidelog.protocol.messages import build

pytestmark = pytest.mark.integration

PARTITIONS = 2
FENCED = {47, 90}  # INVALID_PRODUCER_EPOCH, PRODUCER_FENCED
UNSET = -1001  # librdkafka's "no committed offset"


@pytest.fixture
def two_brokers(tmp_path: Path) -> Iterator[list[BrokerProcess]]:
    args = ["--durability", "object", "--object-store", f"file://{tmp_path / 'bucket'}"]
    brokers = [BrokerProcess(tmp_path / f"node{n}", node_id=n, args=args).start() for n in (1, 2)]
    yield brokers
    for b in brokers:
        b.kill()
        print(f"--- node {b.node_id}\n{b.output()[-6000:]}")


def settled_coordinator(brokers: list[BrokerProcess], topic: str, key: str, key_type: int) -> int:
    """The coordinator of `key` once both brokers are members and agree on it (a slot
    moves once, when the second broker joins)."""
    found: list[int] = []

    def agreed() -> bool:
        answers = {find_coordinator(b.bootstrap, key, key_type=key_type) for b in brokers}
        found[:] = sorted(answers)
        return len(answers) == 1 and leaders(bootstrap(brokers), topic)[0] == {1, 2}

    wait_until(f"the brokers to agree on the coordinator of {key}", agreed, timeout=DEADLINE_S)
    return found[0]


def group_coordinated_elsewhere(boot: str, txn_node: int) -> str:
    """A group name whose slot another broker than `txn_node` owns."""
    for _ in range(64):
        group = topic_name("txn-group")
        if find_coordinator(boot, group, key_type=0) != txn_node:
            return group
    raise AssertionError("64 group names in a row hashed to the transaction's coordinator")


def txn_offset_commit(
    broker: BrokerProcess, txn_id: str, group: str, pid: int, epoch: int, topic: str, offset: int
) -> list[int]:
    m = req(28, 3)
    partition = build(
        m,
        "TxnOffsetCommitRequestPartition",
        partition_index=1,
        committed_offset=offset,
        committed_leader_epoch=-1,
        committed_metadata="",
    )
    request = build(
        m,
        "TxnOffsetCommitRequest",
        transactional_id=txn_id,
        group_id=group,
        producer_id=pid,
        producer_epoch=epoch,
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        topics=(build(m, "TxnOffsetCommitRequestTopic", name=topic, partitions=(partition,)),),
    )
    with RawClient(broker.bootstrap) as c:
        answer = c.request(request)
    return [int(p.error_code) for t in answer.topics for p in t.partitions]


def test_offsets_go_through_the_other_brokers_group_coordinator_and_a_zombie_is_refused(
    two_brokers: list[BrokerProcess],
) -> None:
    boot = bootstrap(two_brokers)
    topic, txn_id = topic_name("txn-elsewhere"), topic_name("tx")
    create_topic(two_brokers[0], topic, partitions=PARTITIONS)
    txn_node = settled_coordinator(two_brokers, topic, txn_id, 1)
    group = group_coordinated_elsewhere(boot, txn_node)
    by_node = {b.node_id: b for b in two_brokers}
    group_broker = by_node[settled_coordinator(two_brokers, topic, group, 0)]

    # The zombie: an earlier incarnation of the id, fenced by the producer below.
    pid, old_epoch = _init(by_node[txn_node], txn_id)
    producer = txn_producer(boot, txn_id)
    producer.init_transactions(DEADLINE_S)
    producer.begin_transaction()
    produce_txn_records(producer, topic, PARTITIONS, "live")
    producer.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 7)], group_metadata(boot, group), DEADLINE_S
    )
    codes = txn_offset_commit(group_broker, txn_id, group, pid, old_epoch, topic, 99)
    assert codes and set(codes) <= FENCED, f"the fenced producer's offsets were taken: {codes}"
    producer.commit_transaction(DEADLINE_S)

    # EndTxn answers once the decision is durable; the marker that makes the offsets
    # the group's follows.
    wait_until(
        "the transaction's offsets to be committed",
        lambda: committed(boot, group, topic, PARTITIONS)[0] == 7,
        timeout=DEADLINE_S,
    )
    assert committed(boot, group, topic, PARTITIONS) == {0: 7, 1: UNSET}

"""Request builders of the transaction APIs for the version sweep
(tests/integration/test_api_versions_sweep.py): each begins its own transaction over
raw frames, then sends the API at the version under test."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tidelog.protocol.messages import build

TOPIC = "sweep"
Built = tuple[Any, Callable[[Any], None]]


def req(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def _init(broker: BrokerProcess, txn_id: str) -> tuple[int, int]:
    request = build(
        req(22, 1),
        "InitProducerIdRequest",
        transactional_id=txn_id,
        transaction_timeout=datetime.timedelta(seconds=60),
    )
    with RawClient(broker.bootstrap) as c:
        r = c.request(request)
    assert r.error_code == 0, r
    return int(r.producer_id), int(r.producer_epoch)


def _add(broker: BrokerProcess, txn_id: str, pid: int, epoch: int) -> None:
    m = req(24, 3)
    request = build(
        m,
        "AddPartitionsToTxnRequest",
        v3_and_below_transactional_id=txn_id,
        v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=(build(m, "AddPartitionsToTxnTopic", name=TOPIC, partitions=(1,)),),
    )
    with RawClient(broker.bootstrap) as c:
        r = c.request(request)
    codes = [
        p.partition_error_code
        for t in r.results_by_topic_v3_and_below
        for p in t.results_by_partition
    ]
    assert codes == [0], r


def _add_group(broker: BrokerProcess, txn_id: str, pid: int, epoch: int, group: str) -> None:
    request = build(
        req(25, 0),
        "AddOffsetsToTxnRequest",
        transactional_id=txn_id,
        producer_id=pid,
        producer_epoch=epoch,
        group_id=group,
    )
    with RawClient(broker.bootstrap) as c:
        assert c.request(request).error_code == 0


def _add_partitions_to_txn(v: int, broker: BrokerProcess) -> Built:
    txn_id = f"sweep-add-v{v}"
    pid, epoch = _init(broker, txn_id)
    m = req(24, v)
    topic = build(m, "AddPartitionsToTxnTopic", name=TOPIC, partitions=(1,))
    if v < 4:
        request = build(
            m,
            "AddPartitionsToTxnRequest",
            v3_and_below_transactional_id=txn_id,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=(topic,),
        )

        def check(r: Any) -> None:
            codes = [p.partition_error_code for t in r.results_by_topic_v3_and_below
                     for p in t.results_by_partition]  # fmt: skip
            assert codes == [0]

        return request, check
    _add(broker, txn_id, pid, epoch)  # v4 is broker to broker: verify what v3 added
    request = build(
        m,
        "AddPartitionsToTxnRequest",
        transactions=(
            build(
                m,
                "AddPartitionsToTxnTransaction",
                transactional_id=txn_id,
                producer_id=pid,
                producer_epoch=epoch,
                verify_only=True,
                topics=(topic,),
            ),
        ),
    )

    def check_v4(r: Any) -> None:
        codes = [p.partition_error_code for x in r.results_by_transaction
                 for t in x.topic_results for p in t.results_by_partition]  # fmt: skip
        assert codes == [0]

    return request, check_v4


def _add_offsets_to_txn(v: int, broker: BrokerProcess) -> Built:
    txn_id = f"sweep-offsets-v{v}"
    pid, epoch = _init(broker, txn_id)
    request = build(
        req(25, v),
        "AddOffsetsToTxnRequest",
        transactional_id=txn_id,
        producer_id=pid,
        producer_epoch=epoch,
        group_id=f"sweep-txn-group-v{v}",
    )
    return request, lambda r: None  # the sweep checks error_code


def _end_txn(v: int, broker: BrokerProcess) -> Built:
    txn_id = f"sweep-end-v{v}"
    pid, epoch = _init(broker, txn_id)
    _add(broker, txn_id, pid, epoch)
    request = build(
        req(26, v),
        "EndTxnRequest",
        transactional_id=txn_id,
        producer_id=pid,
        producer_epoch=epoch,
        committed=v % 2 == 0,
    )
    return request, lambda r: None


def _write_txn_markers(v: int, broker: BrokerProcess) -> Built:
    m = req(27, v)
    pid, epoch = _init(broker, f"sweep-markers-v{v}")
    marker = build(
        m,
        "WritableTxnMarker",
        producer_id=pid,
        producer_epoch=epoch,
        transaction_result=False,
        topics=(build(m, "WritableTxnMarkerTopic", name=TOPIC, partition_indexes=(1,)),),
        coordinator_epoch=0,
    )
    request = build(m, "WriteTxnMarkersRequest", markers=(marker,))

    def check(r: Any) -> None:
        codes = [p.error_code for x in r.markers for t in x.topics for p in t.partitions]
        assert codes == [0]

    return request, check


def _txn_offset_commit(v: int, broker: BrokerProcess) -> Built:
    txn_id, group = f"sweep-txn-commit-v{v}", f"sweep-txn-commit-group-v{v}"
    pid, epoch = _init(broker, txn_id)
    _add_group(broker, txn_id, pid, epoch, group)
    m = req(28, v)
    partition = build(
        m,
        "TxnOffsetCommitRequestPartition",
        partition_index=0,
        committed_offset=3,
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
        topics=(build(m, "TxnOffsetCommitRequestTopic", name=TOPIC, partitions=(partition,)),),
    )

    def check(r: Any) -> None:
        assert [p.error_code for t in r.topics for p in t.partitions] == [0]

    return request, check


WITH_BROKER: dict[int, Callable[[int, BrokerProcess], Built]] = {
    24: _add_partitions_to_txn,
    25: _add_offsets_to_txn,
    26: _end_txn,
    27: _write_txn_markers,
    28: _txn_offset_commit,
}
RANGES = {24: (0, 4), 25: (0, 3), 26: (0, 3), 27: (1, 1), 28: (0, 3)}


def _describe_producers(v: int, broker: BrokerProcess) -> Built:
    m = req(61, v)
    topic = build(m, "TopicRequest", name=TOPIC, partition_indexes=(1,))
    request = build(m, "DescribeProducersRequest", topics=(topic,))

    def check(r: Any) -> None:
        (answer,) = [p for t in r.topics for p in t.partitions]
        assert answer.error_code == 0 and answer.partition_index == 1

    return request, check


def _describe_transactions(v: int, broker: BrokerProcess) -> Built:
    txn_id = f"sweep-describe-v{v}"
    pid, epoch = _init(broker, txn_id)
    _add(broker, txn_id, pid, epoch)
    request = build(req(65, v), "DescribeTransactionsRequest", transactional_ids=(txn_id,))

    def check(r: Any) -> None:
        (state,) = r.transaction_states
        assert (state.error_code, state.transaction_state) == (0, "Ongoing")
        assert (state.producer_id, state.producer_epoch) == (pid, epoch)

    return request, check


def _list_transactions(v: int, broker: BrokerProcess) -> Built:
    txn_id = f"sweep-list-v{v}"
    pid, _ = _init(broker, txn_id)
    request = build(
        req(66, v),
        "ListTransactionsRequest",
        state_filters=(),
        producer_id_filters=(pid,),
        duration_filter=-1,
    )

    def check(r: Any) -> None:
        assert [s.transactional_id for s in r.transaction_states] == [txn_id]

    return request, check


WITH_BROKER.update({61: _describe_producers, 65: _describe_transactions, 66: _list_transactions})
RANGES.update({61: (0, 0), 65: (0, 0), 66: (0, 1)})

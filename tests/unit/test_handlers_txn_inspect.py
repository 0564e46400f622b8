"""ListTransactions, DescribeTransactions and DescribeProducers on a real node: what a
transaction looks like from outside while it is open and after it ends, the filters, and
the errors Kafka gives when this broker is not the one to ask."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NOW_MS, NodeHarness, request, run_node
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

PRODUCE, INIT_PRODUCER_ID, ADD_PARTITIONS, END_TXN = 0, 22, 24, 26
DESCRIBE_PRODUCERS, DESCRIBE_TXNS, LIST_TXNS = 61, 65, 66
TIMEOUT_MS = 60_000


async def _init(h: NodeHarness, txn_id: str) -> tuple[int, int]:
    answer = await h.call(
        request(
            INIT_PRODUCER_ID,
            4,
            "InitProducerIdRequest",
            transactional_id=txn_id,
            transaction_timeout=datetime.timedelta(milliseconds=TIMEOUT_MS),
            producer_id=-1,
            producer_epoch=-1,
        )
    )
    assert answer.error_code == ErrorCode.none
    return int(answer.producer_id), int(answer.producer_epoch)


async def _add(h: NodeHarness, txn_id: str, pid: int, epoch: int, topic: str, *parts: int) -> None:
    answer = await h.call(
        request(
            ADD_PARTITIONS,
            3,
            "AddPartitionsToTxnRequest",
            v3_and_below_transactional_id=txn_id,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=(
                request(ADD_PARTITIONS, 3, "AddPartitionsToTxnTopic", name=topic, partitions=parts),
            ),
        )
    )
    codes = {r.partition_index: r.partition_error_code for t in answer.results_by_topic_v3_and_below
             for r in t.results_by_partition}  # fmt: skip
    assert codes == dict.fromkeys(parts, ErrorCode.none)


async def _produce(
    h: NodeHarness, txn_id: str | None, pid: int, epoch: int, topic: str, part: int, seq: int,
    count: int = 1,
) -> int:  # fmt: skip
    records = [Record(i, NOW_MS + i, b"k", b"v") for i in range(count)]
    data = build_batch(
        records,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        is_transactional=txn_id is not None,
    )
    answer = await h.call(
        request(
            PRODUCE,
            9,
            "ProduceRequest",
            transactional_id=txn_id,
            acks=-1,
            timeout=datetime.timedelta(seconds=30),
            topic_data=(
                request(
                    PRODUCE,
                    9,
                    "TopicProduceData",
                    name=topic,
                    partition_data=(
                        request(PRODUCE, 9, "PartitionProduceData", index=part, records=data),
                    ),
                ),
            ),
        )
    )
    (result,) = answer.responses[0].partition_responses
    assert result.error_code == ErrorCode.none
    return int(result.base_offset)


async def _end(h: NodeHarness, txn_id: str, pid: int, epoch: int, commit: bool) -> None:
    answer = await h.call(
        request(
            END_TXN,
            3,
            "EndTxnRequest",
            transactional_id=txn_id,
            producer_id=pid,
            producer_epoch=epoch,
            committed=commit,
        )
    )
    assert answer.error_code == ErrorCode.none
    # EndTxn answers at PrepareCommit; the markers and the completion follow.
    await h.node.txn_coordinator.settled()


def _list(version: int = 1, **filters: Any) -> Any:
    return request(LIST_TXNS, version, "ListTransactionsRequest", **filters)


def _listed(response: Any) -> dict[str, tuple[int, str]]:
    assert response.error_code == ErrorCode.none
    return {
        s.transactional_id: (int(s.producer_id), s.transaction_state)
        for s in response.transaction_states
    }


async def _describe(h: NodeHarness, *ids: str) -> list[Any]:
    answer = await h.call(
        request(DESCRIBE_TXNS, 0, "DescribeTransactionsRequest", transactional_ids=ids)
    )
    return list(answer.transaction_states)


async def _producers(h: NodeHarness, topic: str, *parts: int) -> dict[int, Any]:
    answer = await h.call(
        request(
            DESCRIBE_PRODUCERS,
            0,
            "DescribeProducersRequest",
            topics=(
                request(DESCRIBE_PRODUCERS, 0, "TopicRequest", name=topic, partition_indexes=parts),
            ),
        )
    )
    (topic_answer,) = answer.topics
    assert topic_answer.name == topic
    return {p.partition_index: p for p in topic_answer.partitions}


def test_an_open_transaction_is_listed_and_described_ongoing_then_complete(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 3)
        pid, epoch = await _init(h, "tx")
        assert _listed(await h.call(_list())) == {"tx": (pid, "Empty")}
        before = h.node.now_ms()
        await _add(h, "tx", pid, epoch, "t", 2, 0)
        await _produce(h, "tx", pid, epoch, "t", 0, 0)

        assert _listed(await h.call(_list(0))) == {"tx": (pid, "Ongoing")}
        (described,) = await _describe(h, "tx")
        assert described.error_code == ErrorCode.none
        assert described.transaction_state == "Ongoing"
        assert (described.producer_id, described.producer_epoch) == (pid, epoch)
        assert described.transaction_timeout == datetime.timedelta(milliseconds=TIMEOUT_MS)
        assert before <= described.transaction_start_time <= h.node.now_ms()
        assert [(t.topic, tuple(t.partitions)) for t in described.topics] == [("t", (0, 2))]

        await _end(h, "tx", pid, epoch, commit=True)
        (done,) = await _describe(h, "tx")
        assert (done.error_code, done.transaction_state) == (ErrorCode.none, "CompleteCommit")
        assert (done.topics, done.transaction_start_time) == ((), -1)
        assert _listed(await h.call(_list())) == {"tx": (pid, "CompleteCommit")}

    run_node(tmp_path, body)


def test_list_filters_by_state_producer_id_and_duration(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        open_pid, open_epoch = await _init(h, "open")
        idle_pid, _ = await _init(h, "idle")
        await _add(h, "open", open_pid, open_epoch, "t", 0)
        ongoing = {"open": (open_pid, "Ongoing")}
        idle = {"idle": (idle_pid, "Empty")}

        assert _listed(await h.call(_list(state_filters=("Ongoing",)))) == ongoing
        assert _listed(await h.call(_list(producer_id_filters=(idle_pid,)))) == idle
        both = _list(state_filters=("Ongoing",), producer_id_filters=(idle_pid,))
        assert _listed(await h.call(both)) == {}

        (meta,) = [m for m in h.node.txn_coordinator.served() if m.transactional_id == "open"]
        while h.node.now_ms() - meta.txn_start_ms <= 1:  # until it has run longer than 1 ms
            await asyncio.sleep(0.001)
        # An Empty id has no running transaction: any duration filter drops it.
        assert _listed(await h.call(_list(duration_filter=1))) == ongoing
        assert _listed(await h.call(_list(0, duration_filter=1))) == {**ongoing, **idle}  # v0
        assert _listed(await h.call(_list(duration_filter=86_400_000))) == {}
        assert _listed(await h.call(_list(duration_filter=-1))) == {**ongoing, **idle}

    run_node(tmp_path, body)


def test_unknown_state_filters_are_echoed_and_match_nothing(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await _init(h, "tx")
        answer = await h.call(_list(state_filters=("ongoing", "Bogus")))
        assert answer.error_code == ErrorCode.none
        assert tuple(answer.unknown_state_filters) == ("ongoing", "Bogus")
        assert answer.transaction_states == ()
        mixed = await h.call(_list(state_filters=("Bogus", "Empty")))
        assert tuple(mixed.unknown_state_filters) == ("Bogus",)
        assert [s.transactional_id for s in mixed.transaction_states] == ["tx"]

    run_node(tmp_path, body)


def test_describe_unknown_id_is_not_found_and_fenced_broker_is_not_coordinator(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await _init(h, "tx")
        known, unknown = await _describe(h, "tx", "nobody")
        assert (known.error_code, known.transaction_state) == (ErrorCode.none, "Empty")
        assert (unknown.transactional_id, unknown.error_code) == (
            "nobody",
            ErrorCode.transactional_id_not_found,
        )
        assert (unknown.transaction_state, unknown.producer_id, unknown.topics) == ("", -1, ())

        h.node.store.step_down("unit test: another broker took over")
        (moved,) = await _describe(h, "tx")
        assert (moved.error_code, moved.transaction_state) == (ErrorCode.not_coordinator, "")
        assert _listed(await h.call(_list())) == {}  # it coordinates nothing now

    run_node(tmp_path, body)


def test_describe_producers_shows_sequences_and_the_open_transactions_first_offset(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        idem_pid = int((await h.call(request(
            INIT_PRODUCER_ID, 4, "InitProducerIdRequest", transactional_id=None,
            transaction_timeout=datetime.timedelta(seconds=60), producer_id=-1, producer_epoch=-1,
        ))).producer_id)  # fmt: skip
        await _produce(h, None, idem_pid, 0, "t", 0, 0, count=3)
        pid, epoch = await _init(h, "tx")
        await _add(h, "tx", pid, epoch, "t", 0, 1)
        first = await _produce(h, "tx", pid, epoch, "t", 0, 0, count=2)
        await _produce(h, "tx", pid, epoch, "t", 0, 2)
        await _produce(h, "tx", pid, epoch, "t", 1, 0)

        parts = await _producers(h, "t", 0, 1)
        assert parts[0].error_code == ErrorCode.none
        rows = {
            p.producer_id: (p.producer_epoch, p.last_sequence, p.last_timestamp,
                            p.coordinator_epoch, p.current_txn_start_offset)
            for p in parts[0].active_producers
        }  # fmt: skip
        assert first == 3
        assert rows == {idem_pid: (0, 2, -1, -1, -1), pid: (epoch, 2, -1, -1, first)}
        (in_one,) = parts[1].active_producers
        assert (in_one.producer_id, in_one.current_txn_start_offset) == (pid, 0)

        await _end(h, "tx", pid, epoch, commit=False)
        after = await _producers(h, "t", 0)
        closed = {p.producer_id: p.current_txn_start_offset for p in after[0].active_producers}
        assert closed == {idem_pid: -1, pid: -1}

    run_node(tmp_path, body)


def test_describe_producers_errors_are_per_partition(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        parts = await _producers(h, "t", 0, 5)
        assert (parts[0].error_code, parts[0].active_producers) == (ErrorCode.none, ())
        assert parts[5].error_code == ErrorCode.unknown_topic_or_partition
        missing = await _producers(h, "no-such-topic", 0)
        assert missing[0].error_code == ErrorCode.unknown_topic_or_partition

        h.node.store.step_down("unit test: another broker took over")
        moved = await _producers(h, "t", 0)
        assert moved[0].error_code == ErrorCode.not_leader_or_follower
        assert moved[0].active_producers == ()

    run_node(tmp_path, body)

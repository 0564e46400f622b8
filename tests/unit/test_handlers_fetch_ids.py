"""Fetch v13-16 on a real node: topics named by id (KIP-516), unknown ids, empty record
sets on every error, and KIP-951 leader hints; Produce v10-11's hints."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.unit.node_harness import NodeHarness, batch, request, run_node
from tidelog.broker.handlers.leader_hints import LeaderHints
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import decode_records

PRODUCE, FETCH = 0, 1
ID_VERSIONS = range(13, 17)


def _fetch(
    version: int, wanted: list[tuple[uuid.UUID, int, int]], *, leader_epoch: int = -1
) -> Any:
    by_topic: dict[uuid.UUID, list[Any]] = {}
    for topic_id, partition, offset in wanted:
        by_topic.setdefault(topic_id, []).append(
            request(
                FETCH,
                version,
                "FetchPartition",
                partition=partition,
                current_leader_epoch=leader_epoch,
                fetch_offset=offset,
                partition_max_bytes=1 << 20,
            )
        )
    return request(
        FETCH,
        version,
        "FetchRequest",
        max_wait=datetime.timedelta(0),
        min_bytes=1,
        max_bytes=1 << 20,
        topics=tuple(
            request(FETCH, version, "FetchTopic", topic_id=t, partitions=tuple(p))
            for t, p in by_topic.items()
        ),
        forgotten_topics_data=(),
    )


def _produce(version: int, topic: str, partition: int, records: bytes) -> Any:
    part = request(PRODUCE, version, "PartitionProduceData", index=partition, records=records)
    return request(
        PRODUCE,
        version,
        "ProduceRequest",
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=30),
        topic_data=(
            request(PRODUCE, version, "TopicProduceData", name=topic, partition_data=(part,)),
        ),
    )


def _partitions(response: Any) -> dict[tuple[uuid.UUID, int], Any]:
    return {(t.topic_id, p.partition_index): p for t in response.responses for p in t.partitions}


def _topic_id(h: NodeHarness, name: str) -> uuid.UUID:
    state = h.node.topic(name)
    assert state is not None
    return uuid.UUID(state.topic_id)


@pytest.mark.parametrize("version", ID_VERSIONS)
def test_fetch_by_topic_id_reads_the_records_and_answers_with_the_id(
    tmp_path: Path, version: int
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce(9, "t", 0, batch(b"a", b"b")))
        tid = _topic_id(h, "t")
        response = await h.call(_fetch(version, [(tid, 0, 0)]))
        assert [t.topic_id for t in response.responses] == [tid]
        p = _partitions(response)[(tid, 0)]
        assert (p.error_code, p.high_watermark) == (ErrorCode.none, 2)
        assert [r.value for r in decode_records(p.records)] == [b"a", b"b"]

    run_node(tmp_path, body)


@pytest.mark.parametrize("version", ID_VERSIONS)
def test_fetch_of_an_unknown_topic_id_answers_unknown_topic_id_with_empty_records(
    tmp_path: Path, version: int
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce(9, "t", 0, batch(b"a")))
        tid, stranger = _topic_id(h, "t"), uuid.uuid4()
        response = await h.call(_fetch(version, [(stranger, 0, 0), (stranger, 3, 0), (tid, 0, 0)]))
        got = _partitions(response)
        for partition in (0, 3):
            p = got[(stranger, partition)]
            assert (p.error_code, p.high_watermark, p.records) == (
                ErrorCode.unknown_topic_id,
                -1,
                b"",
            )
        # The known topic in the same request is served as usual.
        assert got[(tid, 0)].error_code == ErrorCode.none
        assert [r.value for r in decode_records(got[(tid, 0)].records)] == [b"a"]

    run_node(tmp_path, body)


@pytest.mark.parametrize("version", ID_VERSIONS)
def test_fetch_errors_by_topic_id_carry_empty_records_never_null(
    tmp_path: Path, version: int
) -> None:
    # librdkafka cannot parse a null record set ("invalid MessageSetSize -1") and so
    # never acts on the error; Kafka sends an empty one.
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce(9, "t", 0, batch(b"a")))
        tid = _topic_id(h, "t")
        response = await h.call(_fetch(version, [(tid, 0, 5), (tid, 7, 0)]))
        got = _partitions(response)
        assert (got[(tid, 0)].error_code, got[(tid, 0)].records) == (
            ErrorCode.offset_out_of_range,
            b"",
        )
        assert (got[(tid, 7)].error_code, got[(tid, 7)].records) == (
            ErrorCode.unknown_topic_or_partition,
            b"",
        )

    run_node(tmp_path, body)


@pytest.mark.parametrize("version", ID_VERSIONS)
def test_fenced_leader_epoch_carries_the_current_leader_from_v16(
    tmp_path: Path, version: int
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce(9, "t", 0, batch(b"a")))
        tid = _topic_id(h, "t")
        leader = h.node.partition_leader("t", 0)
        assert leader is not None and leader.epoch > 0
        response = await h.call(_fetch(version, [(tid, 0, 0)], leader_epoch=leader.epoch - 1))
        p = _partitions(response)[(tid, 0)]
        assert (p.error_code, p.records) == (ErrorCode.fenced_leader_epoch, b"")
        hint = (p.current_leader.leader_id, p.current_leader.leader_epoch)
        if version < 16:  # Kafka hints from v16 only (KIP-951)
            assert hint == (-1, -1)
            return
        assert hint == (h.node.node_id, leader.epoch)
        me = next(m for m in h.node.live_brokers() if m.node == h.node.node_id)
        assert [(e.node_id, e.host, e.port) for e in response.node_endpoints] == [
            (me.node, me.host, me.port)
        ]

    run_node(tmp_path, body)


def test_leader_hints_name_what_metadata_names(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        hints = LeaderHints(h.node)
        leader = h.node.partition_leader("t", 1)
        assert leader is not None
        assert hints.current_leader("t", 1) == (leader.node_id, leader.epoch)
        assert hints.current_leader("nope", 0) == (-1, -1)  # no leader: no endpoint
        me = next(m for m in h.node.live_brokers() if m.node == h.node.node_id)
        assert hints.endpoints == {me.node: (me.host, me.port)}

    run_node(tmp_path, body)


@pytest.mark.parametrize("version", [9, 10, 11])
def test_produce_v10_and_v11_answer_like_v9_when_nothing_moved(
    tmp_path: Path, version: int
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        response = await h.call(_produce(version, "t", 0, batch(b"a", b"b")))
        (p,) = response.responses[0].partition_responses
        assert (p.error_code, p.base_offset) == (ErrorCode.none, 0)
        if version >= 10:
            assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (-1, -1)
            assert response.node_endpoints == ()

    run_node(tmp_path, body)

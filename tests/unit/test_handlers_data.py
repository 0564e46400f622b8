"""Produce, Fetch and ListOffsets on a real node: records go in through the WAL and come
back out with the offsets the broker gave them; refused requests store nothing."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NOW_MS, NodeHarness, batch, request, run_node
from tidelog.protocol.batch import Compression
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch, decode_records

PRODUCE, FETCH, LIST_OFFSETS = 0, 1, 2
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5


def _produce(
    parts: dict[tuple[str, int], bytes],
    version: int = 9,
    acks: int = -1,
    transactional_id: str | None = None,
) -> Any:
    by_topic: dict[str, list[Any]] = {}
    for (topic, index), records in parts.items():
        by_topic.setdefault(topic, []).append(
            request(PRODUCE, version, "PartitionProduceData", index=index, records=records)
        )
    return request(
        PRODUCE,
        version,
        "ProduceRequest",
        transactional_id=transactional_id,
        acks=acks,
        timeout=datetime.timedelta(seconds=30),
        topic_data=tuple(
            request(PRODUCE, version, "TopicProduceData", name=t, partition_data=tuple(p))
            for t, p in by_topic.items()
        ),
    )


def _answers(response: Any) -> dict[tuple[str, int], tuple[int, int]]:
    return {
        (t.name, p.index): (p.error_code, p.base_offset)
        for t in response.responses
        for p in t.partition_responses
    }


def _fetch(
    wanted: list[tuple[str, int, int]],
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    max_bytes: int = 1 << 20,
) -> Any:
    by_topic: dict[str, list[Any]] = {}
    for topic, partition, offset in wanted:
        by_topic.setdefault(topic, []).append(
            request(
                FETCH,
                12,
                "FetchPartition",
                partition=partition,
                fetch_offset=offset,
                partition_max_bytes=1 << 20,
            )
        )
    return request(
        FETCH,
        12,
        "FetchRequest",
        max_wait=datetime.timedelta(milliseconds=max_wait_ms),
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        topics=tuple(
            request(FETCH, 12, "FetchTopic", topic=t, partitions=tuple(p))
            for t, p in by_topic.items()
        ),
        forgotten_topics_data=(),
    )


def _partitions(response: Any) -> dict[tuple[str, int], Any]:
    return {(t.topic, p.partition_index): p for t in response.responses for p in t.partitions}


def test_produce_assigns_dense_offsets_per_partition_and_fetch_reads_them_back(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        first = await h.call(_produce({("t", 0): batch(b"a", b"b"), ("t", 1): batch(b"x")}))
        assert _answers(first) == {("t", 0): (ErrorCode.none, 0), ("t", 1): (ErrorCode.none, 0)}
        second = await h.call(_produce({("t", 0): batch(b"c")}))
        assert _answers(second) == {("t", 0): (ErrorCode.none, 2)}
        fetched = _partitions(await h.call(_fetch([("t", 0, 0), ("t", 1, 0)])))
        p0, p1 = fetched[("t", 0)], fetched[("t", 1)]
        assert (p0.error_code, p0.high_watermark, p0.log_start_offset) == (ErrorCode.none, 3, 0)
        assert [(r.offset, r.value) for r in decode_records(p0.records)] == [
            (0, b"a"),
            (1, b"b"),
            (2, b"c"),
        ]
        assert [(r.offset, r.value) for r in decode_records(p1.records)] == [(0, b"x")]

    run_node(tmp_path, body)


def test_produce_refusals_store_nothing(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        unknown = await h.call(_produce({("nope", 0): batch(b"a"), ("t", 5): batch(b"a")}))
        assert _answers(unknown) == {
            ("nope", 0): (ErrorCode.unknown_topic_or_partition, -1),
            ("t", 5): (ErrorCode.unknown_topic_or_partition, -1),
        }
        zstd = build_batch([Record(0, NOW_MS, None, b"z" * 100)], compression=Compression.ZSTD)
        old_zstd = await h.call(_produce({("t", 0): zstd}, version=6))
        assert _answers(old_zstd) == {("t", 0): (ErrorCode.unsupported_compression_type, -1)}
        txn_batch = build_batch(
            [Record(0, NOW_MS, None, b"a")],
            producer_id=7,
            producer_epoch=0,
            base_sequence=0,
            is_transactional=True,
        )
        no_id = await h.call(_produce({("t", 0): txn_batch}))
        assert _answers(no_id) == {("t", 0): (ErrorCode.transactional_id_authorization_failed, -1)}
        # With an id, but the partition was never added to a transaction (KIP-890).
        not_added = await h.call(_produce({("t", 0): txn_batch}, transactional_id="tx"))
        assert _answers(not_added) == {("t", 0): (ErrorCode.invalid_txn_state, -1)}
        bad_acks = await h.call(_produce({("t", 0): batch(b"a")}, acks=2))
        assert _answers(bad_acks) == {("t", 0): (ErrorCode.invalid_required_acks, -1)}
        assert h.node.partition("t", 0).high_watermark == 0

    run_node(tmp_path, body)


def test_fetch_long_polls_until_a_produce_brings_data(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        polling = asyncio.ensure_future(h.call(_fetch([("t", 0, 0)], max_wait_ms=30_000)))
        log = h.node.partition("t", 0)
        for _ in range(1000):  # loop turns, not time: until the fetch waits on the partition
            if log._waiters:
                break
            await asyncio.sleep(0)
        assert log._waiters and not polling.done()
        await h.call(_produce({("t", 0): batch(b"late")}))
        fetched = _partitions(await asyncio.wait_for(polling, 10))[("t", 0)]
        assert [r.value for r in decode_records(fetched.records)] == [b"late"]

    run_node(tmp_path, body)


def test_fetch_past_the_response_budget_reports_the_partition_without_records(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        await h.call(_produce({("t", 0): batch(b"a" * 100), ("t", 1): batch(b"b" * 100)}))
        fetched = _partitions(await h.call(_fetch([("t", 0, 0), ("t", 1, 0)], max_bytes=10)))
        first, second = fetched[("t", 0)], fetched[("t", 1)]
        assert [r.value for r in decode_records(first.records)] == [b"a" * 100]  # may exceed
        assert (second.error_code, second.high_watermark, second.records) == (
            ErrorCode.none,
            1,
            b"",
        )

    run_node(tmp_path, body)


def test_fetch_of_an_unknown_partition_or_a_future_offset_is_an_error_at_once(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce({("t", 0): batch(b"a")}))
        response = await h.call(_fetch([("nope", 0, 0), ("t", 0, 5)], max_wait_ms=30_000))
        fetched = _partitions(response)
        assert fetched[("nope", 0)].error_code == ErrorCode.unknown_topic_or_partition
        assert fetched[("t", 0)].error_code == ErrorCode.offset_out_of_range
        assert fetched[("nope", 0)].high_watermark == -1

    run_node(tmp_path, body)


def _list_offsets(topic: str, *queries: tuple[int, int], v: int = 7) -> Any:
    partitions = tuple(
        request(LIST_OFFSETS, v, "ListOffsetsPartition", partition_index=p, timestamp=ts)
        for p, ts in queries
    )
    return request(
        LIST_OFFSETS,
        v,
        "ListOffsetsRequest",
        replica_id=-1,
        isolation_level=0,
        topics=(request(LIST_OFFSETS, v, "ListOffsetsTopic", name=topic, partitions=partitions),),
    )


def _offsets(response: Any) -> list[tuple[int, int, int]]:
    (topic,) = response.topics
    return [(p.error_code, p.timestamp, p.offset) for p in topic.partitions]


def test_list_offsets_answers_earliest_latest_max_timestamp_and_by_time(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce({("t", 0): batch(b"a", b"b", timestamp_ms=1000)}))
        await h.call(_produce({("t", 0): batch(b"c", timestamp_ms=5000)}))
        response = await h.call(
            _list_offsets("t", (0, EARLIEST), (0, LATEST), (0, MAX_TIMESTAMP), (0, 1001))
        )
        assert _offsets(response) == [
            (ErrorCode.none, -1, 0),
            (ErrorCode.none, -1, 3),
            (ErrorCode.none, 5000, 2),
            (ErrorCode.none, 1001, 1),
        ]

    run_node(tmp_path, body)


def test_earliest_local_is_the_log_start_and_latest_tiered_is_none_as_without_tiering(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        await h.call(_produce({("t", 0): batch(b"a", b"b", b"c", timestamp_ms=1000)}))
        await h.node.delete_records("t", 0, 1)
        epoch = h.node.partition("t", 0).leader_epoch
        response = await h.call(_list_offsets("t", (0, EARLIEST_LOCAL), (0, LATEST_TIERED), v=9))
        assert _offsets(response) == [(ErrorCode.none, -1, 1), (ErrorCode.none, -1, -1)]
        assert [p.leader_epoch for p in response.topics[0].partitions] == [epoch, -1]
        v8 = await h.call(_list_offsets("t", (0, EARLIEST_LOCAL), (0, LATEST_TIERED), v=8))
        assert _offsets(v8) == [(ErrorCode.none, -1, 1), (ErrorCode.unsupported_version, -1, -1)]
        v6 = await h.call(_list_offsets("t", (0, MAX_TIMESTAMP), (0, -6), v=6))
        assert _offsets(v6) == [(ErrorCode.unsupported_version, -1, -1)] * 2

    run_node(tmp_path, body)


def test_list_offsets_of_an_unknown_partition_or_special_timestamp_is_an_error(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        response = await h.call(_list_offsets("t", (3, LATEST), (0, -4)))
        assert _offsets(response) == [
            (ErrorCode.unknown_topic_or_partition, -1, -1),
            (ErrorCode.unsupported_version, -1, -1),  # -4 needs v8, as in Kafka
        ]

    run_node(tmp_path, body)

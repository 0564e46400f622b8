"""Leader epochs: the epoch map (storage/leader_epochs.py), its fold in a stream
(storage/stream_state.py), and the epoch checks and answers of OffsetForLeaderEpoch,
ListOffsets and Fetch on a real node, across a restart (a new tenure)."""

from __future__ import annotations

import asyncio
import datetime
import struct
import time
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NodeHarness, batch, request, serve_config
from tidelog.broker.node import BrokerNode
from tidelog.protocol.batch import iter_batches
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.leader_epochs import (
    MAX_EPOCHS,
    as_leader_epoch,
    check_current_epoch,
    end_offset_for,
    epoch_at,
    record_epoch,
)
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.stream_state import PartitionState, StreamState

PRODUCE, FETCH, LIST_OFFSETS, OFFSET_FOR_LEADER_EPOCH = 0, 1, 2, 23

# -- the map ---------------------------------------------------------------------------


def test_an_epoch_that_wrote_nothing_is_replaced_by_the_next_one_at_the_same_offset() -> None:
    epochs = record_epoch([], 5, 0)
    epochs = record_epoch(epochs, 9, 10)
    assert record_epoch(epochs, 12, 10) == [(5, 0), (12, 10)]
    assert record_epoch(epochs, 12, 30) == [(5, 0), (9, 10), (12, 30)]


def test_the_map_keeps_the_last_entries_only() -> None:
    epochs: list[tuple[int, int]] = []
    for i in range(MAX_EPOCHS + 10):
        epochs = record_epoch(epochs, i + 1, i * 10)
    assert len(epochs) == MAX_EPOCHS
    assert epochs[0] == (11, 100)
    # Older than every epoch kept: never an offset earlier than the first start kept.
    assert end_offset_for(epochs, 3, MAX_EPOCHS + 10, 10_000) == (3, 100)


def test_end_offset_for_answers_as_kafka_does() -> None:
    epochs = [(5, 0), (9, 10), (12, 30)]
    assert end_offset_for(epochs, 12, 12, 40) == (12, 40)  # current: the high watermark
    assert end_offset_for(epochs, 9, 12, 40) == (9, 30)
    assert end_offset_for(epochs, 10, 12, 40) == (9, 30)  # not an epoch: the one before
    assert end_offset_for(epochs, 7, 12, 40) == (5, 10)
    assert end_offset_for(epochs, 2, 12, 40) == (2, 0)  # before the first epoch
    assert end_offset_for(epochs, 13, 12, 40) == (-1, -1)  # a future epoch
    assert end_offset_for(epochs, -1, 12, 40) == (-1, -1)
    assert end_offset_for([(5, 0)], 3, 7, 40) == (3, 0)
    assert end_offset_for([(5, 0)], 6, 7, 40) == (5, 40)  # no later epoch wrote anything


def test_epoch_at_and_the_current_epoch_checks() -> None:
    epochs = [(5, 0), (9, 10), (12, 30)]
    assert [epoch_at(epochs, o) for o in (0, 9, 10, 29, 30, 99)] == [5, 5, 9, 9, 12, 12]
    assert epoch_at([(5, 3)], 0) == -1
    assert check_current_epoch(9, -1) == ErrorCode.none
    assert check_current_epoch(9, 9) == ErrorCode.none
    assert check_current_epoch(9, 8) == ErrorCode.fenced_leader_epoch
    assert check_current_epoch(9, 10) == ErrorCode.unknown_leader_epoch
    assert as_leader_epoch(2**31 - 1) == 2**31 - 1
    assert as_leader_epoch(2**31) == -1  # does not fit Kafka's int32: no epoch at all


# -- the fold --------------------------------------------------------------------------


def _stream(*ops: dict[str, Any]) -> StreamState:
    state = StreamState(stream="s")
    header = CommitHeader(node_id=1, epoch=0, timestamp_ms=0, ops=ops, commit_id="c0")
    state.apply(0, header, 0)
    return state


def test_each_adoption_adds_its_tenure_at_the_adopted_end_and_the_next_owner_keeps_them() -> None:
    part = PartitionState("id", "t", 0)
    part.committed_end = 10
    first = _stream(part.to_json(5))
    assert first.partitions[("t", 0)].epochs == [(5, 10)]
    moved = first.partitions[("t", 0)]
    moved.committed_end = 25
    second = _stream(moved.to_json(9))
    assert second.partitions[("t", 0)].epochs == [(5, 10), (9, 25)]
    # Written before epochs existed: none, then this adoption's.
    old = part.to_json(7)
    del old["epochs"]
    assert _stream(old).partitions[("t", 0)].epochs == [(7, 10)]
    # A stream snapshot keeps them.
    again = StreamState.from_snapshot(second.to_snapshot())
    assert again.partitions[("t", 0)].epochs == [(5, 10), (9, 25)]


def test_epoch_start_moves_the_current_epoch_past_replayed_records_only() -> None:
    part = PartitionState("id", "t", 0)
    part.committed_end = 10
    move = {"op": "epoch_start", "topic": "t", "partition": 0, "tenure": 5, "offset": 14}
    assert _stream(part.to_json(5), move).partitions[("t", 0)].epochs == [(5, 14)]
    stale = {**move, "tenure": 4}
    assert _stream(part.to_json(5), stale).partitions[("t", 0)].epochs == [(5, 10)]
    back = {**move, "offset": 3}
    assert _stream(part.to_json(5), back).partitions[("t", 0)].epochs == [(5, 10)]


# -- on a node -------------------------------------------------------------------------


def _produce(topic: str, records: bytes) -> Any:
    part = request(PRODUCE, 9, "PartitionProduceData", index=0, records=records)
    return request(
        PRODUCE,
        9,
        "ProduceRequest",
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=30),
        topic_data=(request(PRODUCE, 9, "TopicProduceData", name=topic, partition_data=(part,)),),
    )


def _offset_for_epoch(topic: str, partition: int, current: int, epoch: int, v: int = 4) -> Any:
    part = request(
        OFFSET_FOR_LEADER_EPOCH,
        v,
        "OffsetForLeaderPartition",
        partition=partition,
        current_leader_epoch=current,
        leader_epoch=epoch,
    )
    topic_entry = request(
        OFFSET_FOR_LEADER_EPOCH, v, "OffsetForLeaderTopic", topic=topic, partitions=(part,)
    )
    return request(
        OFFSET_FOR_LEADER_EPOCH,
        v,
        "OffsetForLeaderEpochRequest",
        replica_id=-1,
        topics=(topic_entry,),
    )


async def _epoch_answer(h: NodeHarness, topic: str, current: int, epoch: int, v: int = 4) -> Any:
    response = await h.call(_offset_for_epoch(topic, 0, current, epoch, v))
    (p,) = response.topics[0].partitions
    return p.error_code, p.leader_epoch, p.end_offset


def _list_latest(topic: str, current: int) -> Any:
    part = request(
        LIST_OFFSETS,
        7,
        "ListOffsetsPartition",
        partition_index=0,
        current_leader_epoch=current,
        timestamp=-1,
    )
    return request(
        LIST_OFFSETS,
        7,
        "ListOffsetsRequest",
        replica_id=-1,
        isolation_level=0,
        topics=(request(LIST_OFFSETS, 7, "ListOffsetsTopic", name=topic, partitions=(part,)),),
    )


def _fetch(topic: str, offset: int, current: int) -> Any:
    part = request(
        FETCH,
        12,
        "FetchPartition",
        partition=0,
        current_leader_epoch=current,
        fetch_offset=offset,
        partition_max_bytes=1 << 20,
    )
    return request(
        FETCH,
        12,
        "FetchRequest",
        max_wait=datetime.timedelta(0),
        min_bytes=1,
        max_bytes=1 << 20,
        topics=(request(FETCH, 12, "FetchTopic", topic=topic, partitions=(part,)),),
        forgotten_topics_data=(),
    )


def _run_twice(tmp_path: Path, first: Any, second: Any) -> None:
    """`first` on a node, then `second` on its restart (same bucket and data dir: a new
    incarnation, which adopts every partition for a new tenure)."""

    async def main() -> None:
        objects = MemoryObjectStore()
        for body in (first, second):
            node = BrokerNode(
                serve_config(tmp_path, durability="object"),
                objects,
                lambda: time.time_ns() // 1_000_000,
            )
            await node.start()
            try:
                await body(NodeHarness(node, objects))
            finally:
                await node.stop()

    asyncio.run(main())


def test_a_restart_is_a_new_epoch_and_the_old_one_ends_where_the_new_one_starts(
    tmp_path: Path,
) -> None:
    seen: dict[str, int] = {}

    async def first(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        leader = h.node.partition_leader("t", 0)
        assert leader is not None and leader.epoch > 0
        seen["epoch"] = leader.epoch
        await h.call(_produce("t", batch(b"a", b"b", b"c")))
        fetched = (await h.call(_fetch("t", 0, leader.epoch))).responses[0].partitions[0]
        stamped = [
            struct.unpack_from(">i", bytes(fetched.records), pos + 12)[0]
            for pos, _ in iter_batches(bytes(fetched.records))
        ]
        assert stamped == [leader.epoch]  # the producer's value was overwritten
        assert await _epoch_answer(h, "t", leader.epoch, leader.epoch) == (0, leader.epoch, 3)
        listed = (await h.call(_list_latest("t", leader.epoch))).topics[0].partitions[0]
        assert (listed.error_code, listed.offset, listed.leader_epoch) == (0, 3, leader.epoch)

    async def second(h: NodeHarness) -> None:
        old = seen["epoch"]
        leader = h.node.partition_leader("t", 0)
        assert leader is not None and leader.epoch > old
        await h.call(_produce("t", batch(b"d")))
        new = leader.epoch
        assert await _epoch_answer(h, "t", new, old) == (0, old, 3)
        assert await _epoch_answer(h, "t", new, new) == (0, new, 4)
        assert await _epoch_answer(h, "t", -1, old - 1, v=2) == (0, old - 1, 0)
        assert await _epoch_answer(h, "t", new, -1) == (0, -1, -1)
        # v0-1 carry no current_leader_epoch, so nothing is fenced; v0 answers no epoch.
        assert await _epoch_answer(h, "t", old, old, v=1) == (0, old, 3)
        v0 = await h.call(_offset_for_epoch("t", 0, old, old, v=0))
        (p,) = v0.topics[0].partitions
        assert (p.error_code, p.end_offset, hasattr(p, "leader_epoch")) == (0, 3, False)
        assert (await _epoch_answer(h, "t", old, old))[0] == ErrorCode.fenced_leader_epoch
        assert (await _epoch_answer(h, "t", new + 1, old))[0] == ErrorCode.unknown_leader_epoch
        assert (await _epoch_answer(h, "nope", -1, old))[0] == (
            ErrorCode.unknown_topic_or_partition
        )
        listed = (await h.call(_list_latest("t", old))).topics[0].partitions[0]
        assert listed.error_code == ErrorCode.fenced_leader_epoch
        fetched = (await h.call(_fetch("t", 0, old))).responses[0].partitions[0]
        assert fetched.error_code == ErrorCode.fenced_leader_epoch
        fetched = (await h.call(_fetch("t", 3, new))).responses[0].partitions[0]
        assert fetched.error_code == ErrorCode.none
        ((pos, _),) = iter_batches(bytes(fetched.records))
        assert struct.unpack_from(">i", bytes(fetched.records), pos + 12)[0] == new

    _run_twice(tmp_path, first, second)

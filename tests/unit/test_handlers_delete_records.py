"""DeleteRecords on a real node: the log start moves up (only up), in the bucket before
the answer; reads below it are OFFSET_OUT_OF_RANGE, ListOffsets EARLIEST answers it."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NodeHarness, batch, request, run_node
from tests.unit.test_handlers_data import (
    EARLIEST,
    _fetch,
    _list_offsets,
    _offsets,
    _partitions,
    _produce,
)
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.stream_state import PartitionState, StreamState

DELETE_RECORDS = 21


def _delete(topic: str, *wanted: tuple[int, int], version: int = 2) -> Any:
    parts = tuple(
        request(DELETE_RECORDS, version, "DeleteRecordsPartition", partition_index=p, offset=o)
        for p, o in wanted
    )
    return request(
        DELETE_RECORDS,
        version,
        "DeleteRecordsRequest",
        topics=(
            request(DELETE_RECORDS, version, "DeleteRecordsTopic", name=topic, partitions=parts),
        ),
        timeout=datetime.timedelta(seconds=30),
    )


def _results(response: Any) -> dict[int, tuple[int, int]]:
    (topic,) = response.topics
    return {p.partition_index: (p.error_code, p.low_watermark) for p in topic.partitions}


def test_delete_records_moves_the_log_start_and_reads_below_it_are_out_of_range(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        await h.call(_produce({("t", 0): batch(b"a", b"b", b"c", b"d", b"e")}))
        await h.call(_produce({("t", 1): batch(b"x", b"y")}))
        for version in (0, 1, 2):
            assert _results(await h.call(_delete("t", (0, 3), version=version))) == {
                0: (ErrorCode.none, 3)
            }
        assert _offsets(await h.call(_list_offsets("t", (0, EARLIEST)))) == [(0, -1, 3)]
        below = _partitions(await h.call(_fetch([("t", 0, 2)])))[("t", 0)]
        assert below.error_code == ErrorCode.offset_out_of_range
        # Empty, not null: librdkafka cannot parse a null record set and would never
        # see the error (so never reset its position).
        assert below.records is not None and len(below.records) == 0
        at = _partitions(await h.call(_fetch([("t", 0, 3)])))[("t", 0)]
        assert (at.error_code, at.log_start_offset, at.high_watermark) == (0, 3, 5)
        # Only up; above the high watermark is refused and changes nothing; -1 is the
        # high watermark; each partition answers on its own.
        assert _results(await h.call(_delete("t", (0, 1), (1, -1)))) == {
            0: (ErrorCode.none, 3),
            1: (ErrorCode.none, 2),
        }
        assert _results(await h.call(_delete("t", (0, 6)))) == {
            0: (ErrorCode.offset_out_of_range, -1)
        }
        assert _results(await h.call(_delete("t", (7, 0)))) == {
            7: (ErrorCode.unknown_topic_or_partition, -1)
        }
        assert _offsets(await h.call(_list_offsets("t", (0, EARLIEST), (1, EARLIEST)))) == [
            (0, -1, 3),
            (0, -1, 2),
        ]
        # In the bucket: what a restarted or new owner folds from the stream.
        state = h.node.store.stream.state
        assert state.partitions[("t", 0)].log_start == 3
        assert PartitionState.from_json(state.partitions[("t", 0)].to_json()).log_start == 3

    run_node(tmp_path, body)


def test_the_log_start_op_only_moves_up_and_ignores_partitions_not_held() -> None:
    state = StreamState()
    state.partitions[("t", 0)] = PartitionState("id", "t", 0)

    def fold(seq: int, *ops: dict[str, Any]) -> None:
        header = CommitHeader(1, 0, 0, ops=ops, commit_id=f"c{seq}", prev_id=state.head_id)
        assert state.apply(seq, header, 0)

    fold(0, {"op": "log_start", "topic": "t", "partition": 0, "offset": 7})
    fold(1, {"op": "log_start", "topic": "t", "partition": 0, "offset": 2})
    fold(2, {"op": "log_start", "topic": "u", "partition": 0, "offset": 9})
    assert state.partitions[("t", 0)].log_start == 7
    assert ("u", 0) not in state.partitions

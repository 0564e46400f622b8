"""A stored batch whose header and CRC-32C are right but whose records do not decode.

Produce checks only a batch's header and CRC (records stay opaque), so a producer can
store such a batch (the request fuzzer does: it edits a record byte and makes the CRC
right again). A ListOffsets lookup that must read records answers by the batch's first
offset instead of raising, which closed the connection with a traceback.
"""

from __future__ import annotations

import datetime
import struct
from pathlib import Path
from typing import Any

import pytest
from crc32c import crc32c

from tests.unit.node_harness import NOW_MS, NodeHarness, batch, request, run_node
from tidelog.protocol.errors import ErrorCode

PRODUCE, LIST_OFFSETS = 0, 2
MAX_TIMESTAMP = -3
_RECORDS_AT = 61  # the first record's length varint, right after the v2 batch header


def undecodable(records: bytes) -> bytes:
    """`records` with the first record's length made negative, the CRC made right."""
    edited = bytearray(records)
    edited[_RECORDS_AT] = 0x3D  # zigzag varint -31
    struct.pack_into(">I", edited, 17, crc32c(bytes(edited[21:])))
    return bytes(edited)


def _produce(records: bytes) -> Any:
    part = request(PRODUCE, 9, "PartitionProduceData", index=0, records=records)
    topic = request(PRODUCE, 9, "TopicProduceData", name="t", partition_data=(part,))
    return request(
        PRODUCE,
        9,
        "ProduceRequest",
        transactional_id=None,
        acks=-1,
        timeout=datetime.timedelta(seconds=30),
        topic_data=(topic,),
    )


def _list_offsets(timestamp: int) -> Any:
    part = request(LIST_OFFSETS, 7, "ListOffsetsPartition", partition_index=0, timestamp=timestamp)
    return request(
        LIST_OFFSETS,
        7,
        "ListOffsetsRequest",
        replica_id=-1,
        isolation_level=0,
        topics=(request(LIST_OFFSETS, 7, "ListOffsetsTopic", name="t", partitions=(part,)),),
    )


@pytest.mark.parametrize("timestamp", [NOW_MS + 2, MAX_TIMESTAMP])
def test_a_lookup_in_undecodable_records_answers_the_batchs_first_offset(
    tmp_path: Path, timestamp: int
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 1)
        good = await h.call(_produce(batch(b"a", b"b")))
        assert good.responses[0].partition_responses[0].error_code == ErrorCode.none
        stored = await h.call(_produce(undecodable(batch(b"c", b"d", timestamp_ms=NOW_MS + 5))))
        (p,) = stored.responses[0].partition_responses
        assert (p.error_code, p.base_offset) == (ErrorCode.none, 2)  # opaque: stored
        (answer,) = (await h.call(_list_offsets(timestamp))).topics[0].partitions
        assert (answer.error_code, answer.offset, answer.timestamp) == (
            ErrorCode.none,
            2,
            NOW_MS + 6,  # the batch's max timestamp: its records cannot say more
        )

    run_node(tmp_path, body)

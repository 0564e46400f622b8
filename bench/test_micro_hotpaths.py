"""Micro benchmarks of the broker's hot paths, through their public functions.

Run with ``make microbench`` (``pytest bench --benchmark-only``); kept out of ``make
test`` by ``testpaths``. Each one times one step of what a produce or fetch costs:

* request decode: a small Produce v9 (one 1 KiB record, what a linger-0 producer sends)
  from header parse to record-set views;
* batch header validation: `validate_produce_records` (header walk and CRC-32C) on one
  small and one 256 KiB batch;
* WAL append + group commit: 64 appends of 1 KiB awaited together (one writev, one
  fdatasync), and the same without the fsync to show the CPU part alone;
* flush object build: a commit of 6 partitions x 1 MiB, `encode_commit` and the one
  join the upload does;
* fetch response assembly: a tail fetch (6 partitions, one 1 KiB batch each).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import uuid
from pathlib import Path

import pytest
from kio.schema.produce.v9 import request as produce_v9
from kio.schema.types import TopicName
from kio.static.primitive import Records, i16, i32, i32Timedelta
from pytest_benchmark.fixture import BenchmarkFixture

from tidelog.protocol.batch import validate_produce_records
from tidelog.protocol.codec import encode_request
from tidelog.protocol.fetch_response import FetchPartitionResult, encode_fetch_response
from tidelog.protocol.headers import parse_request_header
from tidelog.protocol.produce_request import decode_produce_request
from tidelog.protocol.records import Record, build_batch
from tidelog.storage.commit_format import Chunk, CommitHeader, encode_commit
from tidelog.storage.wal import WalWriter, encode_payload

PARTITIONS = 6
TOPIC_ID = str(uuid.UUID(int=7))


def _batch(records: int, value_bytes: int) -> bytes:
    return build_batch(
        [Record(i, 1_700_000_000_000, None, os.urandom(value_bytes)) for i in range(records)]
    )


def _small_produce_frame() -> bytearray:
    request = produce_v9.ProduceRequest(
        transactional_id=None,
        acks=i16(-1),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)),
        topic_data=(
            produce_v9.TopicProduceData(
                name=TopicName("bench"),
                partition_data=(
                    produce_v9.PartitionProduceData(index=i32(0), records=Records(_batch(1, 1024))),
                ),
            ),
        ),
    )
    return bytearray(b"".join(encode_request(1, request, "bench"))[4:])


@pytest.mark.benchmark(group="request-decode")
def test_small_produce_request_decode(benchmark: BenchmarkFixture) -> None:
    frame = _small_produce_frame()

    def decode() -> int:
        header, body_offset = parse_request_header(frame)
        view = decode_produce_request(frame, body_offset, header.api_version)
        return len(view.topics)

    assert benchmark(decode) == 1


@pytest.mark.benchmark(group="batch-validation")
@pytest.mark.parametrize(("records", "value_bytes"), [(1, 1024), (256, 1000)])
def test_validate_produce_batch(
    benchmark: BenchmarkFixture, records: int, value_bytes: int
) -> None:
    batch = _batch(records, value_bytes)
    headers = benchmark(validate_produce_records, batch)
    assert headers[0].records_count == records


@pytest.mark.benchmark(group="wal-append-group-commit-64x1KiB")
@pytest.mark.parametrize("fsync", [True, False])
def test_wal_append_group_commit(benchmark: BenchmarkFixture, tmp_path: Path, fsync: bool) -> None:
    loop = asyncio.new_event_loop()
    wal = WalWriter(tmp_path / "wal", fsync=fsync)
    loop.run_until_complete(wal.open({}))
    head = encode_payload(1, TOPIC_ID, "bench", 0)
    body = _batch(1, 1024)
    end = [0]

    async def append_64() -> None:
        futures = []
        for _ in range(64):
            end[0] += 1
            futures.append(wal.append(head, body, ((TOPIC_ID, 0), end[0])))
        await asyncio.gather(*futures)

    try:
        benchmark(lambda: loop.run_until_complete(append_64()))
    finally:
        loop.run_until_complete(wal.close())
        loop.close()
    assert end[0] >= 64


@pytest.mark.benchmark(group="flush-object-build-6x1MiB")
def test_flush_object_build(benchmark: BenchmarkFixture) -> None:
    data = [_batch(1000, 1000) for _ in range(PARTITIONS)]
    position = 0
    chunks = []
    for partition, batch in enumerate(data):
        chunks.append(Chunk(TOPIC_ID, "bench", partition, 0, 1000, 0, position, len(batch), 0))
        position += len(batch)
    header = CommitHeader(node_id=1, epoch=1, timestamp_ms=0, chunks=tuple(chunks))

    def build() -> bytes:
        return b"".join(encode_commit(header, data))

    body = benchmark(build)
    assert len(body) > sum(map(len, data))


@pytest.mark.benchmark(group="fetch-response-tail-6x1KiB")
def test_tail_fetch_response_assembly(benchmark: BenchmarkFixture) -> None:
    batches = [[_batch(1, 1024)] for _ in range(PARTITIONS)]
    topics = [
        (
            "bench",
            [FetchPartitionResult(i, 0, 1, 1, 0, parts) for i, parts in enumerate(batches)],
        )
    ]

    def encode() -> list[bytes | memoryview | bytearray]:
        return encode_fetch_response(
            1, 12, throttle_ms=0, error_code=0, session_id=0, topics=topics
        )

    pieces = benchmark(encode)
    assert sum(map(len, pieces)) > PARTITIONS * 1024

"""Micro benchmarks: kio's generic codec vs the zero-copy Produce/Fetch fast paths.

Run with ``make microbench`` (``pytest bench --benchmark-only``). The pytest
config's ``testpaths = ["tests"]`` keeps these out of the normal test run.

* Produce v9 decode: 6 partitions, each one 256 KiB record batch, in a
  ``bytearray`` frame as ``FrameReader`` hands it to the broker. kio copies
  every record set into new ``bytes``; the fast path returns views.
* Fetch v12 encode: 6 partitions of 1 MiB each (four 256 KiB buffers, as the
  log store returns them). kio's entity is built beforehand with the records
  already joined, so only its writer is timed; the fast path returns a list
  for ``writelines`` that references the buffers.
* Request guard vs kio decode: for each captured Fetch and Metadata client
  frame (tests/fixtures/clients/), the pre-decode guard alone
  (``protocol.body_guard``) and kio's reader alone, as ``decode_request``
  runs them one after the other on a ``bytearray`` frame.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from kio.schema.fetch.v12 import response as fetch_v12
from kio.schema.produce.v9 import request as produce_v9
from kio.schema.types import TopicName
from kio.serial import entity_reader
from kio.static.primitive import Records, i16, i32, i32Timedelta, i64
from pytest_benchmark.fixture import BenchmarkFixture

from tidelog.protocol.body_guard import body_guard
from tidelog.protocol.codec import decode_request, encode_request, encode_response, request_schema
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.fetch_response import FetchPartitionResult, encode_fetch_response
from tidelog.protocol.headers import parse_request_header
from tidelog.protocol.produce_request import decode_produce_request
from tidelog.protocol.records import Record, build_batch

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "clients"
GUARDED_FRAMES = sorted([*FIXTURES.glob("*-fetch-*.bin"), *FIXTURES.glob("*-metadata-*.bin")])
PARTITIONS = 6
PRODUCE_BATCH_BYTES = 256 * 1024
FETCH_PARTITION_BYTES = 1024 * 1024
FETCH_BUFFERS_PER_PARTITION = 4
_RECORD_VALUE_BYTES = 1000
_RECORD_OVERHEAD_BYTES = 10  # per-record varints in an uncompressed batch, roughly


def _batch_of_about(size: int) -> bytes:
    count = size // (_RECORD_VALUE_BYTES + _RECORD_OVERHEAD_BYTES)
    records = [
        Record(offset, 1_700_000_000_000, None, os.urandom(_RECORD_VALUE_BYTES))
        for offset in range(count)
    ]
    return build_batch(records)


def _produce_frame() -> tuple[bytearray, int]:
    batch = _batch_of_about(PRODUCE_BATCH_BYTES)
    request = produce_v9.ProduceRequest(
        transactional_id=None,
        acks=i16(-1),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)),
        topic_data=(
            produce_v9.TopicProduceData(
                name=TopicName("bench"),
                partition_data=tuple(
                    produce_v9.PartitionProduceData(index=i32(index), records=Records(batch))
                    for index in range(PARTITIONS)
                ),
            ),
        ),
    )
    frame = bytearray(b"".join(encode_request(1, request, "bench"))[4:])
    _header, body_offset = parse_request_header(frame)
    return frame, body_offset


def _fetch_buffers() -> list[list[bytes]]:
    piece = FETCH_PARTITION_BYTES // FETCH_BUFFERS_PER_PARTITION
    return [
        [os.urandom(piece) for _ in range(FETCH_BUFFERS_PER_PARTITION)] for _ in range(PARTITIONS)
    ]


def _kio_fetch_response(buffers: list[list[bytes]]) -> fetch_v12.FetchResponse:
    partitions = tuple(
        fetch_v12.PartitionData(
            partition_index=i32(index),
            error_code=ErrorCode.none,
            high_watermark=i64(1000),
            last_stable_offset=i64(1000),
            log_start_offset=i64(0),
            aborted_transactions=None,
            records=Records(b"".join(parts)),
        )
        for index, parts in enumerate(buffers)
    )
    return fetch_v12.FetchResponse(
        throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
        error_code=ErrorCode.none,
        session_id=i32(0),
        responses=(
            fetch_v12.FetchableTopicResponse(topic=TopicName("bench"), partitions=partitions),
        ),
    )


def _fast_fetch_topics(buffers: list[list[bytes]]) -> list[tuple[str, list[FetchPartitionResult]]]:
    results = [
        FetchPartitionResult(index, 0, 1000, 1000, 0, parts) for index, parts in enumerate(buffers)
    ]
    return [("bench", results)]


@pytest.mark.benchmark(group="produce-v9-decode-6x256KiB")
def test_produce_decode_kio(benchmark: BenchmarkFixture) -> None:
    frame, body_offset = _produce_frame()
    request = benchmark(decode_request, 0, 9, frame, body_offset)
    assert len(request.topic_data[0].partition_data) == PARTITIONS


@pytest.mark.benchmark(group="produce-v9-decode-6x256KiB")
def test_produce_decode_fast_path(benchmark: BenchmarkFixture) -> None:
    frame, body_offset = _produce_frame()
    view = benchmark(decode_produce_request, frame, body_offset, 9)
    [(_name, partitions)] = view.topics
    assert len(partitions) == PARTITIONS
    assert all(records is not None and records.obj is frame for _, records in partitions)


@pytest.mark.benchmark(group="fetch-v12-encode-6x1MiB")
def test_fetch_encode_kio(benchmark: BenchmarkFixture) -> None:
    response = _kio_fetch_response(_fetch_buffers())
    pieces = benchmark(encode_response, 1, response)
    assert sum(map(len, pieces)) > PARTITIONS * FETCH_PARTITION_BYTES


@pytest.mark.benchmark(group="fetch-v12-encode-6x1MiB")
def test_fetch_encode_fast_path(benchmark: BenchmarkFixture) -> None:
    topics = _fast_fetch_topics(_fetch_buffers())

    def encode() -> list[bytes | memoryview | bytearray]:
        return encode_fetch_response(
            1, 12, throttle_ms=0, error_code=0, session_id=0, topics=topics
        )

    pieces = benchmark(encode)
    assert sum(map(len, pieces)) > PARTITIONS * FETCH_PARTITION_BYTES


def _captured(path: Path) -> tuple[bytearray, int, type]:
    frame = bytearray(path.read_bytes())
    header, body_offset = parse_request_header(frame)
    return frame, body_offset, request_schema(header.api_key, header.api_version)


@pytest.mark.parametrize("path", GUARDED_FRAMES, ids=lambda p: p.stem)
def test_request_guard(benchmark: BenchmarkFixture, path: Path) -> None:
    frame, body_offset, schema = _captured(path)
    benchmark.group = f"request-guard-vs-kio-{path.stem}"
    end = benchmark(body_guard(schema), frame, body_offset)
    assert body_offset < end <= len(frame)


@pytest.mark.parametrize("path", GUARDED_FRAMES, ids=lambda p: p.stem)
def test_request_kio_decode(benchmark: BenchmarkFixture, path: Path) -> None:
    frame, body_offset, schema = _captured(path)
    benchmark.group = f"request-guard-vs-kio-{path.stem}"
    # decode_request hands kio a read-only view of the frame; so does this.
    _entity, size = benchmark(entity_reader(schema), memoryview(frame).toreadonly(), body_offset)
    assert size > 0

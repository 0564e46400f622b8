"""Pipelined requests: answered in order, and never stalled by backpressure.

A client may send many requests before reading a response (librdkafka does, up to
its in-flight limit). The broker pauses reading past its in-flight limits and must
resume once they are answered, even when one WAL sync acknowledges them all at once
(the limits themselves: tests/unit/test_connection_backpressure.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.produce.v9.response import ProduceResponse

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, produce_request
from tests.integration.test_clients import create_topic
from tidelog.protocol.codec import decode_response, encode_request
from tidelog.protocol.records import Record, build_batch

pytestmark = pytest.mark.integration

REQUESTS = 300


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("pipe") / "data") as b:
        create_topic(b, "pipe", partitions=2)
        yield b


def produce_frame(correlation: int, value: bytes) -> bytes:
    batch = build_batch([Record(0, 1_700_000_000_000, None, value)])
    request = produce_request("pipe", 0, batch)
    return b"".join(encode_request(correlation, request, "pipeline-test"))


def test_hundreds_of_pipelined_produce_requests_are_all_answered_in_order(
    broker: BrokerProcess,
) -> None:
    with RawClient(broker.bootstrap, timeout=20) as client:
        # Large frames (~100 MB in all, over MAX_IN_FLIGHT_BYTES), so they span many reads
        # and reading really pauses in between.
        client.send_raw(b"".join(produce_frame(i, b"%d" % i * 120_000) for i in range(REQUESTS)))
        offsets = []
        for expected in range(REQUESTS):
            correlation, response = decode_response(0, 9, client.read_frame())
            assert correlation == expected
            assert isinstance(response, ProduceResponse)
            partition = response.responses[0].partition_responses[0]
            assert partition.error_code == 0
            offsets.append(partition.base_offset)
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == REQUESTS

"""Request/response (de)serialisation through kio, error wrapping, ApiVersions fallback."""

from __future__ import annotations

import datetime
import struct
from typing import Any

import kio.index
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.api_versions.v3.request import ApiVersionsRequest as ApiVersionsRequestV3
from kio.schema.api_versions.v3.response import ApiVersion, ApiVersionsResponse
from kio.schema.index import api_key_map, schema_name_map
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.metadata.v12.response import MetadataResponse, MetadataResponseBroker
from kio.schema.produce.v9.request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kio.schema.types import BrokerId, TopicName
from kio.serial import entity_reader
from kio.static.primitive import Records, i16, i32, i32Timedelta

from tests.unit import kio_strategies  # noqa: F401  (registers Records and i64Timedelta)
from tidelog.protocol.api_versions_fallback import encode_api_versions_fallback
from tidelog.protocol.codec import (
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from tidelog.protocol.errors import DecodeError, EncodeError, ErrorCode, UnsupportedRequest
from tidelog.protocol.framing import FrameDecoder
from tidelog.protocol.headers import is_flexible_request, parse_request_header

# The APIs the broker is expected to serve, at the versions where the
# encoding changes: oldest, newest, and either side of the flexible switch.
SERVED_APIS = [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 24, 25, 26, 28]
SERVED_APIS += [32, 36]


def boundary_versions(api_key: int) -> list[int]:
    known = sorted(schema_name_map[api_key_map[api_key]])
    flexible = [v for v in known if is_flexible_request(api_key, v)]
    picks = {known[0], known[-1]}
    if flexible:
        picks |= {flexible[0], flexible[0] - 1}
    return sorted(picks & set(known))


SCHEMAS = [(api_key, version) for api_key in SERVED_APIS for version in boundary_versions(api_key)]


def unframe(parts: list[bytes]) -> bytes:
    decoder = FrameDecoder(max_frame_bytes=1 << 20)
    decoder.feed(b"".join(parts))
    frame = decoder.next_frame()
    assert frame is not None
    assert decoder.buffered_bytes == 0
    return frame


def request_roundtrip(request: Any, client_id: str | None = "tests") -> Any:
    frame = unframe(encode_request(42, request, client_id))
    header, offset = parse_request_header(frame)
    assert header.correlation_id == 42
    assert header.client_id == client_id
    return decode_request(header.api_key, header.api_version, frame, offset)


def produce_request() -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None,
        acks=i16(-1),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=30)),
        topic_data=(
            TopicProduceData(
                name=TopicName("payments"),
                partition_data=(PartitionProduceData(index=i32(0), records=Records(b"batch")),),
            ),
        ),
    )


@pytest.mark.parametrize(("api_key", "version"), SCHEMAS)
@settings(
    max_examples=3,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_served_schema_roundtrips(api_key: int, version: int, data: st.DataObject) -> None:
    request = data.draw(st.from_type(kio.index.load_request_schema(api_key, version)))
    assert request_roundtrip(request) == request
    response = data.draw(st.from_type(kio.index.load_response_schema(api_key, version)))
    frame = unframe(encode_response(7, response))
    assert decode_response(api_key, version, frame) == (7, response)


def test_produce_request_roundtrips_with_null_client_id() -> None:
    assert request_roundtrip(produce_request(), client_id=None) == produce_request()


def test_flexible_response_carries_header_v1() -> None:
    response = MetadataResponse(
        throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
        brokers=(MetadataResponseBroker(node_id=BrokerId(1), host="h", port=i32(9092)),),
        cluster_id="c",
        controller_id=BrokerId(1),
        topics=(),
    )
    parts = encode_response(0x01020304, response)
    wire = b"".join(parts)
    assert struct.unpack_from(">i", wire)[0] == len(wire) - 4
    assert wire[4:9] == b"\x01\x02\x03\x04\x00"  # correlation id + empty tagged fields
    assert decode_response(3, 12, wire[4:]) == (0x01020304, response)


def test_api_versions_v3_response_keeps_header_v0() -> None:
    response = ApiVersionsResponse(
        error_code=ErrorCode.none,
        api_keys=(ApiVersion(api_key=i16(18), min_version=i16(0), max_version=i16(3)),),
        throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
    )
    wire = b"".join(encode_response(9, response))
    # size, correlation id, then straight into error_code 0: no tagged-field byte.
    assert wire[4:10] == b"\x00\x00\x00\x09\x00\x00"
    assert decode_response(18, 3, wire[4:]) == (9, response)


def test_every_truncation_of_a_body_is_a_decode_error() -> None:
    frame = unframe(encode_request(1, produce_request(), "c"))
    _header, offset = parse_request_header(frame)
    for end in range(offset, len(frame)):
        with pytest.raises(DecodeError, match="api_key=0 api_version=9"):
            decode_request(0, 9, frame[:end], offset)


def test_trailing_bytes_after_body_are_ignored_like_kafka_does() -> None:
    frame = unframe(encode_request(1, produce_request(), "c"))
    _header, offset = parse_request_header(frame)
    assert decode_request(0, 9, frame + b"\x01\x00\x00", offset) == produce_request()


def test_garbage_compact_string_is_a_decode_error() -> None:
    # MetadataRequest v12 with one topic whose name claims 100 bytes.
    body = b"\x02" + b"\x00" * 16 + b"\x65" + b"x"
    with pytest.raises(DecodeError, match="api_key=3 api_version=12"):
        decode_request(3, 12, body, 0)


def test_invalid_utf8_string_is_a_decode_error() -> None:
    body = b"\x02" + b"\x00" * 16 + b"\x03\xff\xfe\x00" + b"\x01\x00\x00"
    with pytest.raises(DecodeError):
        decode_request(3, 12, body, 0)


@pytest.mark.parametrize(("api_key", "version"), [(0, 2), (1, 3), (18, 99), (4242, 0), (-1, 0)])
def test_unknown_schema_is_unsupported_request(api_key: int, version: int) -> None:
    with pytest.raises(UnsupportedRequest, match=f"api_key={api_key} api_version={version}"):
        decode_request(api_key, version, b"", 0)


def test_value_kio_cannot_write_is_an_encode_error() -> None:
    request = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name=TopicName("\udcff")),),
        include_topic_authorized_operations=False,
    )
    with pytest.raises(EncodeError, match="type=MetadataRequest"):
        encode_request(1, request)


def test_decoded_request_is_independent_of_the_frame_buffer() -> None:
    frame = bytearray(unframe(encode_request(1, produce_request(), "c")))
    _header, offset = parse_request_header(frame)
    decoded = decode_request(0, 9, frame, offset)
    frame[:] = b"\x00" * len(frame)
    assert decoded == produce_request()


def test_api_versions_fallback_is_a_v0_response_with_unsupported_version() -> None:
    ranges = [(0, 3, 9), (3, 0, 12), (18, 0, 3)]
    wire = b"".join(encode_api_versions_fallback(77, ranges))
    assert struct.unpack_from(">i", wire)[0] == len(wire) - 4
    assert struct.unpack_from(">i", wire, 4)[0] == 77
    response, size = entity_reader(ApiVersionsResponseV0)(wire, 8)
    assert size == len(wire) - 8
    assert response.error_code is ErrorCode.unsupported_version
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == ranges


def test_api_versions_fallback_bytes_are_exact() -> None:
    wire = b"".join(encode_api_versions_fallback(1, [(18, 0, 3)], ErrorCode.none))
    assert wire == bytes.fromhex("0000001000000001000000000001001200000003")


def test_api_versions_request_v3_roundtrips() -> None:
    request = ApiVersionsRequestV3(client_software_name="tidelog", client_software_version="0.1")
    assert request_roundtrip(request) == request

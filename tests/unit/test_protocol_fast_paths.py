"""The zero-copy Produce decoder and Fetch encoder, checked field by field against kio.

kio's generic codec (``protocol.codec``) is the reference: every request the
fast Produce decoder reads must match kio's decode of the same frame, and
every response the fast Fetch encoder writes must read back through kio's
decoder and re-encode to the very same bytes.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.static.primitive import Records, i16, i32, i32Timedelta

from tidelog.protocol._types import BytesLike
from tidelog.protocol._varint import write_uvarint
from tidelog.protocol.batch import Compression
from tidelog.protocol.codec import decode_request, decode_response, encode_request, encode_response
from tidelog.protocol.errors import DecodeError, EncodeError, ErrorCode, UnsupportedRequest
from tidelog.protocol.fetch_response import (
    FetchPartitionResult,
    NodeEndpoint,
    encode_fetch_response,
)
from tidelog.protocol.headers import parse_request_header
from tidelog.protocol.messages import response_module
from tidelog.protocol.produce_request import ProduceRequestView, decode_produce_request
from tidelog.protocol.records import Record, build_batch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
# "-produce-" so that InitProducerId captures are not mistaken for Produce.
PRODUCE_FRAMES = sorted(FIXTURES.glob("*-produce-*.bin"))
PRODUCE_VERSIONS = range(3, 12)
FETCH_VERSIONS = range(4, 17)
INT16 = st.integers(-(2**15), 2**15 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TIMESTAMP = 1_700_000_000_000
# Lowercase first, " key=value" context last.
ERROR_MESSAGE = re.compile(r"^[a-z].* [a-z_]+=\S+$")
FAST = settings(
    max_examples=60,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# (transactional_id, acks, timeout_ms, [(topic, [(partition, records)])])
PlainPartition: TypeAlias = tuple[int, bytes | None]
PlainTopic: TypeAlias = tuple[str, list[PlainPartition]]
PlainProduce: TypeAlias = tuple[str | None, int, int, list[PlainTopic]]


@st.composite
def record_batches(draw: st.DrawFn) -> bytes:
    values = draw(st.lists(st.none() | st.binary(max_size=48), min_size=1, max_size=4))
    compression = draw(st.sampled_from([Compression.NONE, Compression.GZIP, Compression.ZSTD]))
    records = [
        Record(offset, TIMESTAMP + offset, None if offset % 2 else b"k%d" % offset, value)
        for offset, value in enumerate(values)
    ]
    return build_batch(records, compression=compression)


RECORD_SETS = st.none() | st.binary(max_size=64) | record_batches()
PRODUCE_REQUESTS: st.SearchStrategy[PlainProduce] = st.tuples(
    st.none() | st.text(max_size=16),
    INT16,
    st.integers(0, 2**31 - 1),
    st.lists(
        st.tuples(
            st.text(max_size=12),
            st.lists(st.tuples(INT32, RECORD_SETS), max_size=3),
        ),
        max_size=3,
    ),
)


def kio_produce_request(version: int, plain: PlainProduce) -> Any:
    schema = import_module(f"kio.schema.produce.v{version}.request")
    transactional_id, acks, timeout_ms, topics = plain
    return schema.ProduceRequest(
        transactional_id=transactional_id,
        acks=i16(acks),
        timeout=i32Timedelta.parse(datetime.timedelta(milliseconds=timeout_ms)),
        topic_data=tuple(
            schema.TopicProduceData(
                name=name,
                partition_data=tuple(
                    schema.PartitionProduceData(
                        index=i32(index), records=None if records is None else Records(records)
                    )
                    for index, records in partitions
                ),
            )
            for name, partitions in topics
        ),
    )


def produce_frame(version: int, plain: PlainProduce) -> tuple[bytes, int]:
    """A request frame without its size prefix, and the offset of its body."""
    wire = b"".join(encode_request(11, kio_produce_request(version, plain), "fast-path-tests"))
    frame = wire[4:]
    header, body_offset = parse_request_header(frame)
    assert (header.api_key, header.api_version) == (0, version)
    return frame, body_offset


def plain_from_view(view: ProduceRequestView) -> PlainProduce:
    topics = [
        (name, [(index, None if rec is None else bytes(rec)) for index, rec in partitions])
        for name, partitions in view.topics
    ]
    return view.transactional_id, view.acks, view.timeout_ms, topics


def plain_from_kio(request: Any) -> PlainProduce:
    timeout_ms, remainder = divmod(request.timeout, datetime.timedelta(milliseconds=1))
    assert not remainder
    topics = [
        (
            str(topic.name),
            [
                (int(p.index), None if p.records is None else bytes(p.records))
                for p in topic.partition_data
            ],
        )
        for topic in request.topic_data
    ]
    return request.transactional_id, int(request.acks), timeout_ms, topics


def decode_both(frame: BytesLike, body_offset: int, version: int) -> tuple[PlainProduce, Any]:
    fast = plain_from_view(decode_produce_request(frame, body_offset, version))
    return fast, plain_from_kio(decode_request(0, version, frame, body_offset))


# --- Produce request decoding --------------------------------------------------------


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@FAST
@given(plain=PRODUCE_REQUESTS)
def test_produce_decode_matches_kio_field_for_field(version: int, plain: PlainProduce) -> None:
    frame, body_offset = produce_frame(version, plain)
    fast, reference = decode_both(frame, body_offset, version)
    assert fast == reference
    assert fast == plain


@pytest.mark.parametrize("path", PRODUCE_FRAMES, ids=lambda p: p.stem)
def test_produce_decode_matches_kio_for_captured_client_frames(path: Path) -> None:
    frame = bytearray(path.read_bytes())
    header, body_offset = parse_request_header(frame)
    fast, reference = decode_both(frame, body_offset, header.api_version)
    assert fast == reference
    [(topic, [(partition, records)])] = fast[3]
    assert (topic, partition) == ("cap", 0)
    assert records


def test_captured_produce_frames_cover_v7_and_v9() -> None:
    versions = {parse_request_header(path.read_bytes())[0].api_version for path in PRODUCE_FRAMES}
    assert versions == {7, 9}


def sample_request() -> PlainProduce:
    batch = build_batch([Record(0, TIMESTAMP, b"k", b"payment")])
    topics: list[PlainTopic] = [
        ("pay-ü", [(0, batch), (3, None)]),
        ("t2", [(1, b"")]),
        ("empty", []),
    ]
    return "tx-1", -1, 30_000, topics


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_produce_records_are_writable_views_of_a_bytearray_frame(version: int) -> None:
    data, body_offset = produce_frame(version, sample_request())
    frame = bytearray(data)
    view = decode_produce_request(frame, body_offset, version)
    records = view.topics[0][1][0][1]
    assert records is not None
    assert records.obj is frame
    assert not records.readonly
    start = bytes(frame).index(bytes(records))
    frame[start] ^= 0xFF
    assert records[0] == frame[start]
    records[1] = 0x42  # what patching a base offset in place does
    assert frame[start + 1] == 0x42


@pytest.mark.parametrize("frame_type", [bytes, memoryview])
def test_produce_records_of_a_readonly_frame_are_readonly_views(frame_type: type[Any]) -> None:
    data, body_offset = produce_frame(9, sample_request())
    frame = frame_type(data)
    records = decode_produce_request(frame, body_offset, 9).topics[0][1][0][1]
    assert records is not None
    assert records.readonly
    assert records.obj is data


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_produce_decode_rejects_every_truncation(version: int) -> None:
    # Strict: even a cut that only loses a trailing tagged-field count is a
    # truncated frame, because Kafka always writes that count.
    frame, body_offset = produce_frame(version, sample_request())
    for cut in range(len(frame)):
        with pytest.raises(DecodeError) as caught:
            decode_produce_request(frame[:cut], body_offset, version)
        assert ERROR_MESSAGE.match(str(caught.value)), str(caught.value)


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_produce_decode_ignores_bytes_after_the_body(version: int) -> None:
    frame, body_offset = produce_frame(version, sample_request())
    fast, reference = decode_both(frame + b"\x00\xff\x07", body_offset, version)
    assert fast == reference == sample_request()


def v9_body_with_tagged_fields() -> bytes:
    """A v9 body with unknown tagged fields after the partition, topic and body."""
    tagged = bytearray([1])  # one field: tag 7, three bytes
    write_uvarint(tagged, 7)
    write_uvarint(tagged, 3)
    tagged += b"xyz"
    body = bytearray([3]) + b"tx"  # compact transactional id
    body += (1).to_bytes(2, "big", signed=True) + (500).to_bytes(4, "big")
    body += bytes([2, 2]) + b"t"  # one topic, compact name "t"
    body += bytes([2]) + (5).to_bytes(4, "big")  # one partition, index 5
    body += bytes([4]) + b"rec" + tagged  # compact records b"rec"
    return bytes(body + tagged + tagged)


def test_produce_decode_skips_unknown_tagged_fields() -> None:
    decoded = plain_from_view(decode_produce_request(v9_body_with_tagged_fields(), 0, 9))
    assert decoded == ("tx", 1, 500, [("t", [(5, b"rec")])])
    # kio raises KeyError on unknown tags, so compare with kio on the untagged twin.
    untagged_plain: PlainProduce = ("tx", 1, 500, [("t", [(5, b"rec")])])
    frame, body_offset = produce_frame(9, untagged_plain)
    assert plain_from_kio(decode_request(0, 9, frame, body_offset)) == decoded


@pytest.mark.parametrize(
    ("version", "body", "fragment"),
    [
        # A null topic array: Kafka refuses it too (kio would return topic_data=None).
        (3, b"\xff\xff\x00\x01\x00\x00\x00\x64\xff\xff\xff\xff", "null or negative array count"),
        (9, b"\x00\x00\x01\x00\x00\x00\x64\x00\x00", "null or negative array count"),
        (3, b"\xff\xfe\x00\x01\x00\x00\x00\x64\x00\x00\x00\x00", "negative string length"),
        # One topic, padded to the 6 bytes a topic takes at least, so its name is read.
        (
            3,
            b"\xff\xff\x00\x01\x00\x00\x00\x64\x00\x00\x00\x01\xff\xff" + bytes(4),
            "negative string length",
        ),
        (
            3,
            b"\xff\xff\x00\x01\x00\x00\x00\x64\x00\x00\x00\x01\x00\x01\xff" + bytes(3),
            "not utf-8",
        ),
        (9, b"\x00\x00\x01\x00\x00\x00\x64\x02\x02\xc3\x01", "not utf-8"),
        (9, b"\x80\x80\x80\x80\x80\x01", "overlong varint"),
        (
            3,
            b"\xff\xff\x00\x01\x00\x00\x00\x64\x00\x00\x00\x01\x00\x01t"
            b"\x00\x00\x00\x01\x00\x00\x00\x00\xff\xff\xff\xfe",
            "invalid records length",
        ),
    ],
)
def test_produce_decode_rejects_malformed_fields(version: int, body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment) as caught:
        decode_produce_request(body, 0, version)
    assert ERROR_MESSAGE.match(str(caught.value)), str(caught.value)


# Null transactional id, acks 1, timeout 100 ms: then the topic array.
PRODUCE_V3_HEAD = b"\xff\xff\x00\x01\x00\x00\x00\x64"
PRODUCE_V9_HEAD = b"\x00\x00\x01\x00\x00\x00\x64"


@pytest.mark.parametrize(
    ("version", "body", "fragment"),
    [
        (3, PRODUCE_V3_HEAD + b"\x7f\xff\xff\xff", "field=topic_data count=2147483647"),
        (9, PRODUCE_V9_HEAD + b"\xff\xff\xff\xff\x0f", "field=topic_data count=4294967294"),
        # Two topics need at least 6 bytes in v9; five are left.
        (9, PRODUCE_V9_HEAD + b"\x03" + b"\x00" * 5, "field=topic_data count=2 min_element_size=3"),
        (
            3,
            PRODUCE_V3_HEAD + b"\x00\x00\x00\x01\x00\x01t\x7f\xff\xff\xff",
            "field=partition_data count=2147483647 min_element_size=8",
        ),
        (
            9,
            PRODUCE_V9_HEAD + b"\x02\x02t\xff\xff\xff\xff\x0f",
            "field=partition_data count=4294967294 min_element_size=6",
        ),
    ],
)
def test_produce_decode_refuses_a_count_the_bytes_left_cannot_hold_before_reading_it(
    version: int, body: bytes, fragment: str
) -> None:
    with pytest.raises(
        DecodeError, match="has an array count the bytes left cannot hold"
    ) as caught:
        decode_produce_request(body, 0, version)
    assert fragment in str(caught.value)
    assert ERROR_MESSAGE.match(str(caught.value)), str(caught.value)


@pytest.mark.parametrize("varint", [b"\x80\x80\x80\x80\x10", b"\xff\xff\xff\xff\x7f"])
def test_produce_decode_refuses_a_varint_above_32_bits(varint: bytes) -> None:
    with pytest.raises(DecodeError, match="has a varint above 32 bits field=topic_data"):
        decode_produce_request(PRODUCE_V9_HEAD + varint + bytes(64), 0, 9)


@pytest.mark.parametrize("version", [0, 2, 12, 13])
def test_produce_decode_refuses_versions_outside_3_to_11(version: int) -> None:
    with pytest.raises(UnsupportedRequest, match=f"api_version={version}$"):
        decode_produce_request(b"", 0, version)


def has_null_array(request: Any) -> bool:
    """True when kio read a null topic or partition array (which Kafka rejects)."""
    topics = request.topic_data
    return topics is None or any(topic.partition_data is None for topic in topics)


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@FAST
@given(data=st.data())
def test_produce_decode_agrees_with_kio_on_corrupted_frames(
    version: int, data: st.DataObject
) -> None:
    frame, body_offset = produce_frame(version, sample_request())
    corrupt = bytearray(frame)
    positions = st.integers(body_offset, len(frame) - 1)
    for position, value in data.draw(
        st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=4)
    ):
        corrupt[position] = value
    try:
        fast = plain_from_view(decode_produce_request(corrupt, body_offset, version))
    except DecodeError:
        fast = None
    try:
        request: Any = decode_request(0, version, corrupt, body_offset)
    except DecodeError:
        assert fast is None
        return
    except KeyError as error:  # kio does not skip unknown tagged fields: nothing to compare
        assert "tagged field" in str(error)
        return
    if has_null_array(request):  # kio allows it; Kafka and the fast path refuse it
        assert fast is None
        return
    assert fast == plain_from_kio(request)


@FAST
@given(version=st.sampled_from(PRODUCE_VERSIONS), body=st.binary(max_size=96))
def test_produce_decode_raises_only_decode_error_on_garbage(version: int, body: bytes) -> None:
    try:
        decode_produce_request(body, 0, version)
    except DecodeError as error:
        assert ERROR_MESSAGE.match(str(error)), str(error)


# --- Fetch response encoding ---------------------------------------------------------

BUFFER = (
    st.binary(max_size=48)
    | st.binary(max_size=48).map(bytearray)
    | st.binary(max_size=48).map(lambda b: memoryview(bytearray(b)))
)
PARTITION_RESULTS = st.builds(
    FetchPartitionResult,
    partition_index=INT32,
    error_code=st.sampled_from(list(ErrorCode)),
    high_watermark=INT64,
    last_stable_offset=INT64,
    log_start_offset=INT64,
    records=st.none() | st.lists(BUFFER, max_size=3),
    aborted=st.none() | st.lists(st.tuples(INT64, INT64), max_size=3),
    current_leader=st.none() | st.tuples(INT32, INT32),
)
FETCH_TOPICS = st.lists(
    st.tuples(st.text(max_size=12) | st.uuids(), st.lists(PARTITION_RESULTS, max_size=3)),
    max_size=3,
)
NODE_ENDPOINTS = st.lists(
    st.builds(
        NodeEndpoint,
        node_id=INT32,
        host=st.text(max_size=12),
        port=INT32,
        rack=st.none() | st.text(max_size=6),
    ),
    max_size=3,
)
FetchTopics: TypeAlias = list[tuple[str | uuid.UUID, list[FetchPartitionResult]]]


def for_version(version: int, topics: FetchTopics) -> FetchTopics:
    """`topics` as `version` can carry them: named by id from v13 (KIP-516), by name
    before; no current_leader before v12 (the field is v12's tagged field 1)."""
    out: FetchTopics = []
    for topic, partitions in topics:
        if version >= 13:
            topic = topic if isinstance(topic, uuid.UUID) else uuid.uuid5(uuid.NAMESPACE_DNS, topic)
        else:
            topic = topic if isinstance(topic, str) else str(topic)
        if version < 12:
            partitions = [p._replace(current_leader=None) for p in partitions]
        out.append((topic, partitions))
    return out


def decode_fetch(version: int, pieces: Sequence[BytesLike]) -> tuple[bytes, int, Any]:
    """The joined wire bytes, the correlation id and kio's decode of the frame."""
    wire = b"".join(pieces)
    assert int.from_bytes(wire[:4], "big", signed=True) == len(wire) - 4
    correlation_id, response = decode_response(1, version, wire[4:])
    return wire, correlation_id, response


def joined(records: Sequence[BytesLike] | None) -> bytes | None:
    return None if records is None else b"".join(records)


@pytest.mark.parametrize("version", FETCH_VERSIONS)
@FAST
@given(
    throttle_ms=st.integers(0, 2**31 - 1),
    error_code=st.sampled_from(list(ErrorCode)),
    session_id=INT32,
    topics=FETCH_TOPICS,
    endpoints=NODE_ENDPOINTS,
)
def test_fetch_encode_matches_kio_field_for_field(
    version: int,
    throttle_ms: int,
    error_code: int,
    session_id: int,
    topics: FetchTopics,
    endpoints: list[NodeEndpoint],
) -> None:
    topics = for_version(version, topics)
    endpoints = endpoints if version >= 16 else []
    pieces = encode_fetch_response(
        -7, version, throttle_ms=throttle_ms, error_code=error_code, session_id=session_id,
        topics=topics, node_endpoints=endpoints,
    )  # fmt: skip
    wire, correlation_id, response = decode_fetch(version, pieces)
    assert correlation_id == -7
    assert response.throttle_time == datetime.timedelta(milliseconds=throttle_ms)
    if version >= 7:
        assert (response.error_code, response.session_id) == (error_code, session_id)
    if version >= 13:
        assert [t.topic_id for t in response.responses] == [topic for topic, _ in topics]
    else:
        assert [t.topic for t in response.responses] == [topic for topic, _ in topics]
    if version >= 16:
        assert [(e.node_id, e.host, e.port, e.rack) for e in response.node_endpoints] == [
            tuple(e) for e in endpoints
        ]
    for topic, (_, partitions) in zip(response.responses, topics, strict=True):
        assert len(topic.partitions) == len(partitions)
        for decoded, sent in zip(topic.partitions, partitions, strict=True):
            assert decoded.partition_index == sent.partition_index
            assert decoded.error_code == sent.error_code
            assert decoded.high_watermark == sent.high_watermark
            assert decoded.last_stable_offset == sent.last_stable_offset
            if sent.aborted is None:
                assert decoded.aborted_transactions is None
            else:
                assert [
                    (a.producer_id, a.first_offset) for a in decoded.aborted_transactions
                ] == list(sent.aborted)
            assert decoded.records == joined(sent.records)
            if version >= 5:
                assert decoded.log_start_offset == sent.log_start_offset
            if version >= 11:
                assert decoded.preferred_read_replica == -1
            if version >= 12:
                leader = decoded.current_leader
                assert (leader.leader_id, leader.leader_epoch) == (sent.current_leader or (-1, -1))
    # Nothing extra or missing anywhere: kio writes back the very same bytes.
    assert b"".join(encode_response(-7, response)) == wire


@pytest.mark.parametrize("version", FETCH_VERSIONS)
def test_fetch_record_buffers_pass_through_uncopied(version: int) -> None:
    words = memoryview(bytearray(b"wordwise")).cast("I")  # nbytes counts, not len
    records: list[BytesLike] = [
        b"first",
        bytearray(b"second"),
        memoryview(b"--third--")[2:-2],
        words,
    ]
    topics = for_version(version, [("t", [FetchPartitionResult(0, 0, 10, 10, 0, records)])])
    pieces = encode_fetch_response(
        1, version, throttle_ms=0, error_code=0, session_id=0, topics=topics
    )
    for buffer in records:
        assert any(piece is buffer for piece in pieces)
    _, _, response = decode_fetch(version, pieces)
    assert response.responses[0].partitions[0].records == b"firstsecondthirdwordwise"


@pytest.mark.parametrize("version", FETCH_VERSIONS)
def test_fetch_null_records_differ_from_an_empty_record_set(version: int) -> None:
    topics = for_version(
        version,
        [
            (
                "t",
                [
                    FetchPartitionResult(0, 3, -1, -1, -1, None),
                    FetchPartitionResult(1, 0, 5, 5, 0, []),
                ],
            ),
        ],
    )
    pieces = encode_fetch_response(
        1, version, throttle_ms=0, error_code=0, session_id=0, topics=topics
    )
    _, _, response = decode_fetch(version, pieces)
    assert [p.records for p in response.responses[0].partitions] == [None, b""]
    assert len(pieces) == 1  # no record buffers: everything coalesced


@pytest.mark.parametrize("version", FETCH_VERSIONS)
def test_fetch_first_piece_is_size_prefix_and_response_header(version: int) -> None:
    pieces = encode_fetch_response(
        0x01020304, version, throttle_ms=0, error_code=0, session_id=0, topics=[]
    )
    header = b"\x01\x02\x03\x04" + (b"\x00" if version >= 12 else b"")
    first = bytes(pieces[0])
    assert first[4 : 4 + len(header)] == header
    assert int.from_bytes(first[:4], "big") == sum(len(piece) for piece in pieces) - 4


@pytest.mark.parametrize(
    ("version", "topics"),
    [
        (3, []),
        (17, []),
        (13, [("t", [])]),  # v13+ names topics by id
        (12, [(uuid.UUID(int=1), [])]),  # v4-12 by name
        (11, [("t", [FetchPartitionResult(0, 6, 0, 0, 0, [], current_leader=(2, 3))])]),
        (12, [("t", [FetchPartitionResult(2**31, 0, 0, 0, 0, None)])]),
        (4, [("t", [FetchPartitionResult(0, 0, 2**63, 0, 0, None)])]),
        (12, [("x" * 0x8000, [])]),
        (7, [("x" * 0x8000, [])]),
        (12, [("\ud800", [])]),
        (9, [("t", [FetchPartitionResult(0, 0, 0, 0, 0, b"one buffer")])]),  # type: ignore[arg-type]
    ],
)
def test_fetch_encode_rejects_values_without_a_wire_form(version: int, topics: FetchTopics) -> None:
    with pytest.raises(EncodeError) as caught:
        encode_fetch_response(1, version, throttle_ms=0, error_code=0, session_id=0, topics=topics)
    assert ERROR_MESSAGE.match(str(caught.value)), str(caught.value)


@pytest.mark.parametrize("version", range(4, 16))
def test_fetch_node_endpoints_need_v16(version: int) -> None:
    with pytest.raises(EncodeError) as caught:
        encode_fetch_response(
            1, version, throttle_ms=0, error_code=0, session_id=0, topics=[],
            node_endpoints=[NodeEndpoint(2, "h", 9092)],
        )  # fmt: skip
    assert ERROR_MESSAGE.match(str(caught.value)), str(caught.value)


def test_fetch_v16_hints_are_kafkas_tagged_fields_byte_for_byte() -> None:
    # What kio writes for the same response: current_leader as the partition's tagged
    # field 1 (9 bytes: id, epoch, no tags), node_endpoints as the body's tagged field 0.
    topic = uuid.UUID(int=5)
    pieces = encode_fetch_response(
        3, 16, throttle_ms=0, error_code=0, session_id=0,
        topics=[(topic, [FetchPartitionResult(0, 6, -1, -1, -1, [], current_leader=(2, 7))])],
        node_endpoints=[NodeEndpoint(2, "h", 9)],
    )  # fmt: skip
    wire = b"".join(pieces)
    assert wire.endswith(
        bytes.fromhex("01 01 09 00000002 00000007 00")  # partition tags
        + b"\x00"  # topic tags
        + bytes.fromhex("01 00 0d 02 00000002 0268 00000009 00 00")
    )
    _, response = decode_response(1, 16, wire[4:])
    assert isinstance(response, response_module(1, 16).FetchResponse)
    assert response.node_endpoints[0].node_id == 2
    assert response.responses[0].topic_id == topic

"""The pre-decode guard: hostile counts, lengths, varints, tags and nulls never reach kio.

Frames that abort the interpreter on a kio without the guard in front are
decoded in a child process (``decode_worker``): on such code the child dies and
the test fails, instead of the whole pytest run ending.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kio.index
import pytest
from kio.schema.fetch.v12.request import FetchRequest
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader
from kio.static.constants import EntityType

from tests.unit.decode_worker import CODEC, DecodeWorker
from tests.unit.wire_bodies import (
    HUGE_COMPACT,
    HUGE_LEGACY,
    body,
    element_min_size,
    length_prefix,
    request_frame,
)
from tidelog.protocol._varint import write_uvarint
from tidelog.protocol.body_guard import body_guard
from tidelog.protocol.codec import decode_request
from tidelog.protocol.errors import DecodeError
from tidelog.protocol.headers import parse_request_header

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
ISSUE_FRAME = bytes.fromhex("000000110003000c0000000100017800ffffffff0f")
ERROR_MESSAGE = re.compile(r"^[a-z].* [a-z_]+=\S+$")

# (api_key, api_version, path to an array): every flexible API a fuzz run crashed,
# then the newest legacy version of each with an array to count.
HOSTILE_COUNTS = [
    (1, 12, ("topics",)),  # Fetch
    (1, 12, ("topics", "partitions")),
    (2, 7, ("topics",)),  # ListOffsets
    (3, 12, ("topics",)),  # Metadata
    (8, 8, ("topics",)),  # OffsetCommit
    (9, 8, ("groups",)),  # OffsetFetch
    (9, 8, ("groups", "topics", "partition_indexes")),
    (10, 4, ("coordinator_keys",)),  # FindCoordinator
    (15, 5, ("groups",)),  # DescribeGroups
    (16, 4, ("states_filter",)),  # ListGroups
    (19, 7, ("topics",)),  # CreateTopics
    (19, 7, ("topics", "assignments", "broker_ids")),
    (20, 4, ("topic_names",)),  # DeleteTopics
    (42, 2, ("groups_names",)),  # DeleteGroups
    (1, 11, ("topics",)),
    (1, 11, ("topics", "partitions")),
    (2, 5, ("topics",)),
    (3, 8, ("topics",)),
    (8, 7, ("topics",)),
    (9, 7, ("topics",)),
    (15, 4, ("groups",)),
    (19, 4, ("topics",)),
    (20, 3, ("topic_names",)),
    (42, 1, ("groups_names",)),
    (11, 5, ("protocols",)),  # JoinGroup
    (14, 3, ("assignments",)),  # SyncGroup
    (37, 1, ("topics",)),  # CreatePartitions
    (32, 3, ("resources",)),  # DescribeConfigs
]

# Non-nullable arrays sent as null: each reached a handler as None before.
FORBIDDEN_NULLS = [
    (1, 12, ("topics",)),
    (1, 4, ("topics",)),
    (2, 7, ("topics",)),
    (8, 8, ("topics",)),
    (11, 7, ("protocols",)),
    (14, 5, ("assignments",)),
    (15, 5, ("groups",)),
    (16, 4, ("states_filter",)),
    (20, 4, ("topic_names",)),
    (37, 3, ("topics",)),
    (42, 2, ("groups_names",)),
    (42, 0, ("groups_names",)),
]


def schema(api_key: int, api_version: int) -> type[Any]:
    return kio.index.load_request_schema(api_key, api_version)


def flexible(api_key: int, api_version: int) -> bool:
    return bool(schema(api_key, api_version).__flexible__)


def refusal(api_key: int, api_version: int, body_bytes: bytes) -> str:
    """The guard's message for ``body_bytes``; fails the test if it is accepted."""
    with pytest.raises(DecodeError) as caught:
        body_guard(schema(api_key, api_version))(body_bytes, 0)
    return str(caught.value)


def ending_at(kio_schema: type[Any], path: tuple[str, ...], replacement: bytes) -> bytes:
    """A body that stops right after ``replacement`` at ``path``: nothing else is left."""
    return body(kio_schema, path, replacement, end_after_replacement=True)


def uvarint(value: int) -> bytes:
    out = bytearray()
    write_uvarint(out, value)
    return bytes(out)


@pytest.fixture(scope="module")
def worker() -> Iterator[DecodeWorker]:
    child = DecodeWorker()
    yield child
    child.close()


def test_the_21_byte_metadata_request_is_refused_and_the_process_lives(
    worker: DecodeWorker,
) -> None:
    outcome = worker.decode(ISSUE_FRAME[4:], CODEC)
    assert outcome.kind == "refused", outcome
    assert "array count the bytes left cannot hold field=topics count=4294967294" in outcome.detail


@pytest.mark.parametrize(
    ("api_key", "api_version", "path"),
    HOSTILE_COUNTS,
    ids=[f"{api_key_map[k]}-v{v}-{'.'.join(p)}" for k, v, p in HOSTILE_COUNTS],
)
def test_a_count_beyond_the_frame_is_refused_before_kio_allocates(
    worker: DecodeWorker, api_key: int, api_version: int, path: tuple[str, ...]
) -> None:
    huge = HUGE_COMPACT if flexible(api_key, api_version) else HUGE_LEGACY
    frame = request_frame(api_key, api_version, body(schema(api_key, api_version), path, huge))
    outcome = worker.decode(frame, CODEC)
    assert outcome.kind == "refused", outcome
    assert f"array count the bytes left cannot hold field={'.'.join(path)}" in outcome.detail


@pytest.mark.parametrize(
    ("api_key", "api_version", "path"),
    FORBIDDEN_NULLS,
    ids=[f"{api_key_map[k]}-v{v}-{'.'.join(p)}" for k, v, p in FORBIDDEN_NULLS],
)
def test_a_null_array_where_the_schema_forbids_null_is_a_decode_error(
    api_key: int, api_version: int, path: tuple[str, ...]
) -> None:
    null = length_prefix("array", flexible(api_key, api_version), None)
    frame = request_frame(api_key, api_version, body(schema(api_key, api_version), path, null))
    _header, offset = parse_request_header(frame)
    with pytest.raises(DecodeError, match=f"null where the schema forbids null field={path[-1]}"):
        decode_request(api_key, api_version, frame, offset)


def test_a_count_is_weighed_by_its_elements_minimum_size() -> None:
    # A Fetch v12 partition takes at least 33 bytes: 3 need 99, and 84 are left.
    fetch, path = schema(1, 12), ("topics", "partitions")
    assert element_min_size(fetch, path) == 33
    message = refusal(1, 12, body(fetch, path, uvarint(4) + bytes(80)))
    assert "field=topics.partitions count=3 min_element_size=33 remaining=84" in message
    enough = body(fetch, path, uvarint(4) + bytes(99))
    assert body_guard(fetch)(enough, 0) == len(enough)


def test_a_fixed_size_array_is_checked_without_a_walk() -> None:
    # broker_ids: int32 each, so 5 of them need 20 bytes.
    path = ("topics", "assignments", "broker_ids")
    short = ending_at(schema(19, 7), path, uvarint(6) + bytes(19))
    assert "count=5 min_element_size=4 remaining=19" in refusal(19, 7, short)
    enough = body(schema(19, 7), path, uvarint(6) + bytes(20))
    assert body_guard(schema(19, 7))(enough, 0) == len(enough)


@pytest.mark.parametrize(
    ("api_key", "api_version", "path", "length"),
    [
        (3, 12, ("topics", "name"), uvarint(2**32 - 1)),
        (3, 8, ("topics", "name"), struct.pack(">h", 32767)),
        (10, 2, ("key",), struct.pack(">h", 500)),
        (11, 5, ("protocols", "metadata"), struct.pack(">i", 2**31 - 1)),
        (11, 7, ("protocols", "metadata"), uvarint(1000)),
    ],
)
def test_a_string_or_bytes_length_past_the_end_is_refused(
    api_key: int, api_version: int, path: tuple[str, ...], length: bytes
) -> None:
    message = refusal(api_key, api_version, body(schema(api_key, api_version), path, length))
    assert f"length past the end field={'.'.join(path)}" in message


@pytest.mark.parametrize(
    ("api_key", "api_version", "path", "length", "what"),
    [
        (3, 8, ("topics", "name"), struct.pack(">h", -2), "negative length"),
        (11, 5, ("protocols", "metadata"), struct.pack(">i", -7), "negative length"),
        (1, 11, ("topics",), struct.pack(">i", -2), "negative array count"),
        (3, 8, ("topics", "name"), struct.pack(">h", -1), "null where the schema forbids null"),
        (11, 7, ("protocols", "metadata"), b"\x00", "null where the schema forbids null"),
    ],
)
def test_a_negative_length_other_than_the_null_marker_is_refused(
    api_key: int, api_version: int, path: tuple[str, ...], length: bytes, what: str
) -> None:
    message = refusal(api_key, api_version, body(schema(api_key, api_version), path, length))
    assert f"{what} field={'.'.join(path)}" in message


def test_a_nullable_array_or_string_may_be_null() -> None:
    metadata = schema(3, 12)
    assert body_guard(metadata)(b"\x00\x01\x00\x00", 0) == 4  # topics null
    named = body(metadata, ("topics", "name"), b"\x00")
    assert body_guard(metadata)(named, 0) == len(named)


@pytest.mark.parametrize(
    ("varint", "what"),
    [
        (b"\xff\xff\xff\xff\xff\x01", "varint longer than 5 bytes"),
        (b"\x80\x80\x80\x80\x10", "varint above 32 bits"),
        (b"\xff\xff\xff\xff\x7f", "varint above 32 bits"),
        (b"\x80\x80", "varint cut off by the end"),
    ],
)
def test_an_overlong_or_overflowing_varint_is_refused(varint: bytes, what: str) -> None:
    frame = ending_at(schema(3, 12), ("topics",), varint)
    assert f"{what} field=topics" in refusal(3, 12, frame)


# Fetch v12 with topics, forgotten topics and rack id empty: then its tagged fields.
FETCH_V12_BEFORE_TAGS = bytes(25) + b"\x01\x01\x01"


@pytest.mark.parametrize(
    ("tags", "what"),
    [
        (b"\x01\x00\x09\x03ab", "tagged field size past the end"),
        (b"\x01\x07\x09\x03ab", "tagged field size past the end"),
        (b"\x01\x00\x04\x03abc", "tagged field value that does not fill its declared size"),
        (b"\x01\x00\x02\x03ab", "length past the end field=cluster_id"),
        (b"\x05\x00\x01\x00", "tagged field count the bytes left cannot hold"),
        (b"\x01\x00\x01\x00", "null where the schema forbids null"),
    ],
)
def test_a_tagged_field_must_fit_the_frame_and_its_declared_size(tags: bytes, what: str) -> None:
    assert what in refusal(1, 12, FETCH_V12_BEFORE_TAGS + tags)


def test_a_known_tag_is_accepted_and_an_unknown_one_skipped_by_its_size() -> None:
    guard = body_guard(schema(1, 12))
    known = FETCH_V12_BEFORE_TAGS + b"\x01\x00\x03\x03ab"
    assert guard(known, 0) == len(known)
    request = decode_request(1, 12, known, 0)
    assert isinstance(request, FetchRequest) and request.cluster_id == "ab"
    unknown = FETCH_V12_BEFORE_TAGS + b"\x02\x00\x03\x03ab\x09\x02zz"
    assert guard(unknown, 0) == len(unknown)
    with pytest.raises(DecodeError, match="Unknown tagged field tag: 9"):
        decode_request(1, 12, unknown, 0)  # kio's own refusal, caught by the codec


def test_a_nullable_struct_marker_is_minus_one_or_one() -> None:
    # DescribeTopicPartitions v0: topics, response partition limit, then cursor (KIP-893).
    guard = body_guard(schema(75, 0))
    prefix = b"\x01" + struct.pack(">i", 10)
    assert guard(prefix + b"\xff\x00", 0) == 7
    present = prefix + b"\x01" + b"\x02t" + struct.pack(">i", 0) + b"\x00\x00"
    assert guard(present, 0) == len(present)
    message = refusal(75, 0, prefix + b"\x02" + present[6:])
    assert "nullable struct marker other than -1 or 1 field=cursor" in message


def test_a_body_cut_anywhere_is_refused() -> None:
    full = body(schema(1, 12), ("topics", "partitions"), uvarint(2) + bytes(33))
    guard = body_guard(schema(1, 12))
    assert guard(full, 0) == len(full)
    for end in range(len(full)):
        with pytest.raises(DecodeError):
            guard(full[:end], 0)


def test_refusals_are_lowercase_and_end_in_key_value_context() -> None:
    frame = ISSUE_FRAME[4:]
    _header, offset = parse_request_header(frame)
    message = refusal(3, 12, frame[offset:])
    assert ERROR_MESSAGE.match(message), message
    assert message.startswith("request body refused before decoding: ")
    assert message.endswith("api_key=3 api_version=12")


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.bin")), ids=lambda p: p.stem)
def test_every_captured_client_frame_is_accepted_and_decodes_as_kio_alone_does(
    path: Path,
) -> None:
    data = path.read_bytes()
    header, offset = parse_request_header(data)
    request_class = schema(header.api_key, header.api_version)
    expected, size = entity_reader(request_class)(data, offset)
    for frame in (data, bytearray(data), memoryview(data)):
        assert body_guard(request_class)(frame, offset) == offset + size
    assert decode_request(header.api_key, header.api_version, bytearray(data), offset) == expected


def test_librdkafkas_stray_bytes_after_an_all_topics_metadata_are_left_alone() -> None:
    data = (FIXTURES / "confluent-metadata-v12-alltopics.bin").read_bytes()
    _header, offset = parse_request_header(data)
    assert body_guard(schema(3, 12))(data, offset) == len(data) - 3


def every_kio_schema() -> Iterator[tuple[type[Any], str]]:
    for api_key, name in api_key_map.items():
        for version in schema_name_map[name]:
            for side in (EntityType.request, EntityType.response):
                loader = (
                    kio.index.load_request_schema
                    if side is EntityType.request
                    else kio.index.load_response_schema
                )
                try:
                    yield loader(api_key, version), f"{name}-v{version}-{side.name}"
                except kio.index.KioIndexError:
                    continue


def test_every_kio_schema_compiles_and_accepts_its_smallest_body() -> None:
    count = 0
    for kio_schema, name in every_kio_schema():
        smallest = body(kio_schema)
        assert body_guard(kio_schema)(smallest, 0) == len(smallest), name
        assert entity_reader(kio_schema)(smallest, 0)[1] == len(smallest), name
        count += 1
    assert count > 500

"""Request header parsing (v1/v2, unknown keys, garbage) and header-version rules."""

from __future__ import annotations

import struct

import kio.index
import pytest
from kio.schema.index import api_key_map, schema_name_map

from tidelog.protocol.errors import DecodeError
from tidelog.protocol.headers import (
    RequestHeader,
    is_flexible_request,
    is_flexible_response,
    parse_request_header,
)


def header_bytes(
    api_key: int, api_version: int, correlation_id: int, client_id: bytes | None
) -> bytes:
    fixed = struct.pack(">hhi", api_key, api_version, correlation_id)
    if client_id is None:
        return fixed + struct.pack(">h", -1)
    return fixed + struct.pack(">h", len(client_id)) + client_id


def test_v1_header_body_starts_right_after_client_id() -> None:
    frame = header_bytes(3, 4, 77, b"app") + b"BODY"
    header, offset = parse_request_header(frame)
    assert header == RequestHeader(api_key=3, api_version=4, correlation_id=77, client_id="app")
    assert frame[offset:] == b"BODY"


def test_v2_header_skips_empty_tagged_fields() -> None:
    frame = header_bytes(3, 12, 5, b"app") + b"\x00" + b"BODY"
    header, offset = parse_request_header(frame)
    assert header.correlation_id == 5
    assert frame[offset:] == b"BODY"


def test_v2_header_skips_unknown_tagged_fields() -> None:
    # two tags: (tag 0, 3 bytes), (tag 7, 0 bytes)
    tagged = b"\x02" + b"\x00\x03xyz" + b"\x07\x00"
    frame = header_bytes(0, 9, 1, None) + tagged + b"BODY"
    header, offset = parse_request_header(frame)
    assert header.client_id is None
    assert frame[offset:] == b"BODY"


def test_null_and_empty_client_ids_differ() -> None:
    assert parse_request_header(header_bytes(18, 0, 1, None))[0].client_id is None
    assert parse_request_header(header_bytes(18, 0, 1, b""))[0].client_id == ""


def test_unknown_api_key_still_yields_correlation_id() -> None:
    frame = header_bytes(999, 3, 123, b"who") + b"\x00whatever"
    header, offset = parse_request_header(frame)
    assert (header.api_key, header.api_version, header.correlation_id) == (999, 3, 123)
    assert offset == len(header_bytes(999, 3, 123, b"who"))


def test_unknown_api_versions_version_is_read_with_header_v2() -> None:
    frame = header_bytes(18, 99, 8, b"c") + b"\x00" + b"BODY"
    header, offset = parse_request_header(frame)
    assert header.api_version == 99
    assert frame[offset:] == b"BODY"


def test_header_parses_from_memoryview_and_bytearray() -> None:
    frame = header_bytes(3, 4, 77, b"app")
    assert parse_request_header(memoryview(frame))[0].client_id == "app"
    assert parse_request_header(bytearray(frame))[0].client_id == "app"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x00\x12\x00\x03\x00\x00\x00", "request header truncated length=7"),
        (header_bytes(3, 4, 1, b"abc")[:-1], "client_id_length=3 length=12"),
        (struct.pack(">hhih", 3, 4, 1, -2), "client_id_length=-2"),
        (header_bytes(3, 4, 1, b"\xff\xfe"), "not utf-8 api_key=3"),
        (header_bytes(3, 12, 1, b"a"), "tagged fields malformed api_key=3"),
        (header_bytes(3, 12, 1, b"a") + b"\x01\x00\x05ab", "tagged fields malformed"),
    ],
)
def test_malformed_header_raises_decode_error(frame: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_request_header(frame)


def test_api_versions_response_header_is_never_flexible() -> None:
    assert is_flexible_request(18, 3)
    assert not is_flexible_response(18, 3)
    assert not is_flexible_response(18, 4)
    assert is_flexible_response(3, 9)
    assert not is_flexible_response(3, 8)


def test_never_flexible_and_unknown_apis_use_header_v1() -> None:
    assert not is_flexible_request(17, 1)  # SaslHandshake
    assert not is_flexible_request(12345, 0)


def test_flexibility_table_agrees_with_every_kio_schema() -> None:
    mismatches = []
    for api_key, name in api_key_map.items():
        for version in schema_name_map[name]:
            request = kio.index.load_request_schema(api_key, version)
            response = kio.index.load_response_schema(api_key, version)
            response_flexible = response.__header_schema__.__version__ == 1
            if is_flexible_request(api_key, version) != request.__flexible__:
                mismatches.append(("request", api_key, version))
            if is_flexible_response(api_key, version) != response_flexible:
                mismatches.append(("response", api_key, version))
    assert mismatches == []

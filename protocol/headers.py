"""Request and response headers: which version applies, how to read and write them.

Owns the header rules of the Kafka protocol:

* a request uses header v2 (with tagged fields) when its (api_key,
  api_version) is flexible, else v1; ``client_id`` is a nullable int16
  string in both;
* a response uses header v1 (correlation id + tagged fields) when the
  request was flexible, else v0 -- except ApiVersions, whose response header
  is always v0 so that a client can read it before versions are agreed.

Guarantees: ``parse_request_header`` reads api_key, api_version,
correlation_id and client_id for *any* api key or version, known or not, so
the broker can always answer with an error or close the connection knowing
who asked. It raises ``DecodeError`` only when those fields themselves are
truncated or malformed.

The first flexible version of each API comes from Kafka's message schemas;
a unit test checks the table against every schema kio knows.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from tidelog.protocol._types import BytesLike
from tidelog.protocol._varint import skip_tagged_fields
from tidelog.protocol.errors import DecodeError

__all__ = [
    "API_VERSIONS_KEY",
    "RequestHeader",
    "is_flexible_request",
    "is_flexible_response",
    "parse_request_header",
]

API_VERSIONS_KEY = 18

# api_key -> first version whose request (and response) is flexible. APIs
# that never became flexible (SaslHandshake, OffsetDelete) are absent, as
# are unknown keys: both use header v1 / v0.
_FIRST_FLEXIBLE_VERSION: dict[int, int] = {
    0: 9, 1: 12, 2: 6, 3: 9, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4, 15: 5,
    16: 3, 18: 3, 19: 5, 20: 4, 21: 2, 22: 2, 23: 4, 24: 3, 25: 3, 26: 3, 27: 1,
    28: 3, 29: 2, 30: 2, 31: 2, 32: 4, 33: 2, 34: 2, 35: 2, 36: 2, 37: 2, 38: 2,
    39: 2, 40: 2, 41: 2, 42: 2, 43: 2, 44: 1, 45: 0, 46: 0, 48: 1, 49: 1, 50: 0,
    51: 0, 52: 0, 53: 1, 54: 1, 55: 0, 56: 0, 57: 0, 58: 0, 59: 0, 60: 0, 61: 0,
    62: 0, 63: 0, 64: 0, 65: 0, 66: 0, 67: 0, 68: 0, 69: 0, 70: 0, 71: 0, 72: 0,
    73: 0, 74: 0, 75: 0, 76: 0, 77: 0, 78: 0, 79: 0, 80: 0, 81: 0, 82: 0, 83: 0,
    84: 0, 85: 0, 86: 0, 87: 0, 88: 0, 89: 0, 90: 0, 91: 0, 92: 0,
}  # fmt: skip

# api_key, api_version, correlation_id, client_id length.
_FIXED = struct.Struct(">hhih")


class RequestHeader(NamedTuple):
    """The header every request starts with (v1 and v2 carry the same fields)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def is_flexible_request(api_key: int, api_version: int) -> bool:
    """True when the request uses header v2 and compact, tagged encodings."""
    first = _FIRST_FLEXIBLE_VERSION.get(api_key)
    return first is not None and api_version >= first


def is_flexible_response(api_key: int, api_version: int) -> bool:
    """True when the response header is v1 (ApiVersions never is)."""
    return api_key != API_VERSIONS_KEY and is_flexible_request(api_key, api_version)


def parse_request_header(frame: BytesLike) -> tuple[RequestHeader, int]:
    """Read the request header at the start of ``frame``.

    Returns the header and the offset of the body within ``frame``. For an
    unknown api key the header is read as v1 (nothing follows client_id).
    """
    length = len(frame)
    if length < _FIXED.size:
        raise DecodeError(f"request header truncated length={length}")
    api_key, api_version, correlation_id, client_id_length = _FIXED.unpack_from(frame, 0)
    position = _FIXED.size
    client_id: str | None = None
    if client_id_length >= 0:
        end = position + client_id_length
        if end > length:
            raise DecodeError(
                f"request client id truncated api_key={api_key} correlation_id={correlation_id}"
                f" client_id_length={client_id_length} length={length}"
            )
        try:
            client_id = str(frame[position:end], "utf-8")
        except UnicodeDecodeError:
            raise DecodeError(
                f"request client id is not utf-8 api_key={api_key} correlation_id={correlation_id}"
            ) from None
        position = end
    elif client_id_length != -1:
        raise DecodeError(
            f"request client id length is negative api_key={api_key}"
            f" correlation_id={correlation_id} client_id_length={client_id_length}"
        )
    header = RequestHeader(api_key, api_version, correlation_id, client_id)
    if is_flexible_request(api_key, api_version):
        try:
            position = skip_tagged_fields(frame, position)
        except ValueError as error:
            raise DecodeError(
                f"request header tagged fields malformed api_key={api_key}"
                f" correlation_id={correlation_id} reason={error}"
            ) from None
    return header, position

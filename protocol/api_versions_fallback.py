"""The ApiVersions answer for a version the broker does not know.

Owns one hand-built wire format: an ApiVersions *v0* response (response
header v0, error_code, legacy array of (api_key, min, max)), which every
client can read whatever version it asked for. Kafka answers an ApiVersions
request of an unknown version this way with error 35 UNSUPPORTED_VERSION,
so the client can pick the highest version both sides know and retry.

Guarantees: the bytes include the 4-byte size prefix and do not depend on
kio knowing the requested version.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from tidelog.protocol.errors import ErrorCode

__all__ = ["encode_api_versions_fallback"]

# size, correlation_id, error_code, api_keys array length.
_PREFIX = struct.Struct(">iihi")
_API_RANGE = struct.Struct(">hhh")


def encode_api_versions_fallback(
    correlation_id: int,
    api_ranges: Iterable[tuple[int, int, int]],
    error_code: ErrorCode = ErrorCode.unsupported_version,
) -> list[bytes]:
    """Size prefix + ApiVersions v0 response listing (api_key, min, max) ranges."""
    body = b"".join(_API_RANGE.pack(key, low, high) for key, low, high in api_ranges)
    count = len(body) // _API_RANGE.size
    size = _PREFIX.size - 4 + len(body)
    return [_PREFIX.pack(size, correlation_id, error_code, count), body]

"""tidelog's sans-I/O Kafka codec: bytes in, requests out; responses in, bytes out.

Owns everything about the Kafka wire format and nothing about sockets,
clocks or logging. The public surface is re-exported here; submodules hold
the details (``framing``, ``headers``, ``codec``, ``api_versions_fallback``,
``batch`` on the hot path, ``records`` off it, ``errors``).
"""

from tidelog.protocol.api_versions_fallback import encode_api_versions_fallback
from tidelog.protocol.batch import (
    BatchHeader,
    Compression,
    TimestampType,
    iter_batches,
    patch_base_offset,
    set_base_offsets,
    validate_produce_records,
)
from tidelog.protocol.codec import decode_request, encode_response
from tidelog.protocol.errors import (
    DecodeError,
    EncodeError,
    ErrorCode,
    FrameTooLarge,
    InvalidFrame,
    ProtocolError,
    RecordBatchError,
    UnsupportedRequest,
)
from tidelog.protocol.framing import FrameDecoder, frame
from tidelog.protocol.headers import RequestHeader, parse_request_header

__all__ = [
    "BatchHeader",
    "Compression",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "FrameDecoder",
    "FrameTooLarge",
    "InvalidFrame",
    "ProtocolError",
    "RecordBatchError",
    "RequestHeader",
    "TimestampType",
    "UnsupportedRequest",
    "decode_request",
    "encode_api_versions_fallback",
    "encode_response",
    "frame",
    "iter_batches",
    "parse_request_header",
    "patch_base_offset",
    "set_base_offsets",
    "validate_produce_records",
]

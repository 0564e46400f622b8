"""Errors raised by the protocol package, and Kafka's error codes.

Owns the exception hierarchy of ``protocol/``. Guarantees three families:

* ``ProtocolError``: the peer sent bytes that break the wire protocol (bad
  frame, undecodable header or body). The connection cannot be trusted any
  more; the broker closes it.
* ``RecordBatchError``: a record set inside an otherwise well-formed request
  is invalid. It is *not* a connection problem: each subclass carries the
  Kafka ``error_code`` that belongs in the per-partition response.
* ``EncodeError``: the caller asked to encode something that cannot be
  encoded (a programming error in the broker, never the peer's fault).

``ErrorCode`` is kio's IntEnum of Kafka error codes (with ``.retriable``),
re-exported so the rest of tidelog imports it from one place.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

__all__ = [
    "CorruptRecordBatch",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "FrameTooLarge",
    "InvalidFrame",
    "InvalidRecordBatch",
    "ProtocolError",
    "RecordBatchError",
    "UnsupportedCompression",
    "UnsupportedMagic",
    "UnsupportedRequest",
]


class ProtocolError(Exception):
    """The peer sent bytes that violate the Kafka wire protocol."""


class InvalidFrame(ProtocolError):
    """A frame's size prefix is impossible (negative)."""


class FrameTooLarge(ProtocolError):
    """A frame's size prefix is above the configured maximum."""


class DecodeError(ProtocolError):
    """A request header or body is truncated, malformed or has trailing bytes."""


class UnsupportedRequest(ProtocolError):
    """No schema exists for the request's (api_key, api_version)."""


class EncodeError(Exception):
    """The caller asked to encode a value that has no wire form."""


class RecordBatchError(Exception):
    """A record set is invalid; ``error_code`` is the Kafka code to answer with."""

    error_code: ErrorCode = ErrorCode.corrupt_message


class CorruptRecordBatch(RecordBatchError):
    """Bad CRC-32C, truncated batch or inconsistent lengths."""

    error_code = ErrorCode.corrupt_message


class UnsupportedMagic(RecordBatchError):
    """A message set in the legacy v0/v1 formats (magic 0 or 1)."""

    error_code = ErrorCode.unsupported_for_message_format


class UnsupportedCompression(RecordBatchError):
    """The attributes name a compression codec that does not exist."""

    error_code = ErrorCode.unsupported_compression_type


class InvalidRecordBatch(RecordBatchError):
    """A well-formed batch that a client may not produce (count, offsets, control)."""

    error_code = ErrorCode.invalid_record

"""The error the storage engine answers Kafka requests with."""

from __future__ import annotations

from tidelog.protocol.errors import ErrorCode


class StoreError(Exception):
    """A request the store refuses; carries the Kafka error code to answer with, and for
    INVALID_RECORD the records at fault (Produce v8+ `record_errors`, KIP-467): each is
    (index of the record in its batch, message)."""

    def __init__(
        self, code: ErrorCode, message: str, record_errors: tuple[tuple[int, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.record_errors = record_errors


def fenced_error() -> StoreError:
    """What every write of a fenced broker is answered with."""
    return StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced")

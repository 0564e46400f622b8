"""The error the storage engine answers Kafka requests with."""

from __future__ import annotations

from tidelog.protocol.errors import ErrorCode


class StoreError(Exception):
    """A request the store refuses; carries the Kafka error code to answer with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def fenced_error() -> StoreError:
    """What every write of a fenced broker is answered with."""
    return StoreError(ErrorCode.not_leader_or_follower, "this broker was fenced")

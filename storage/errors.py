"""The error the storage engine answers Kafka requests with."""

from __future__ import annotations

from tidelog.protocol.errors import ErrorCode


class StoreError(Exception):
    """A request the store refuses; carries the Kafka error code to answer with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code

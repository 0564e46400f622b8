"""The Produce handler answers each partition on its own: no sockets, a stub node."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from tidelog.broker.handlers.produce import ProduceHandler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.storage.log_store import AppendResult, PendingAppend


class StoreWithABug:
    """Appends partition 0; partition 1 hits a bug (not a StoreError)."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, int]] = []
        self.counted: list[tuple[str, int]] = []

    @property
    def traffic(self) -> StoreWithABug:
        return self

    enabled = False  # the authorizer is off

    @property
    def security(self) -> StoreWithABug:
        return self

    def bytes_in(self, topic: str, size: int) -> None:
        self.counted.append((topic, size))

    def bytes_out(self, topic: str, size: int) -> None:
        raise AssertionError("produce serves no bytes")

    def append_nowait(
        self, topic: str, partition: int, records: bytes, *, txn_verified: bool = False
    ) -> PendingAppend:
        if partition == 1:
            raise ValueError("invalid literal for int() with base 10: 'abc'")
        self.appended.append((topic, partition))

        async def durable() -> None:
            return None

        return PendingAppend(AppendResult(base_offset=5, log_start_offset=0), durable())


def answers(store: Any) -> dict[int, tuple[int, int]]:
    request = SimpleNamespace(
        transactional_id=None, acks=-1, topics=[("t", [(0, b"batch"), (1, b"batch")])]
    )
    header = RequestHeader(api_key=0, api_version=9, correlation_id=1, client_id="test")
    response = asyncio.run(ProduceHandler().handle(store, header, request))
    (topic,) = response.responses
    return {p.index: (p.error_code, p.base_offset) for p in topic.partition_responses}


def test_a_partition_that_fails_unexpectedly_is_answered_alone_not_with_a_dropped_connection() -> (
    None
):
    store = StoreWithABug()
    assert answers(store) == {0: (ErrorCode.none, 5), 1: (ErrorCode.unknown_server_error, -1)}
    assert store.appended == [("t", 0)]
    assert store.counted == [("t", len(b"batch"))]  # bytes in: the acked partition only


def test_acks_other_than_minus_one_zero_or_one_is_invalid_required_acks_for_all() -> None:
    store = StoreWithABug()
    request = SimpleNamespace(transactional_id=None, acks=2, topics=[("t", [(0, b"batch")])])
    header = RequestHeader(api_key=0, api_version=9, correlation_id=1, client_id="test")
    response = asyncio.run(ProduceHandler().handle(store, header, request))  # type: ignore[arg-type]
    (topic,) = response.responses
    assert [p.error_code for p in topic.partition_responses] == [ErrorCode.invalid_required_acks]
    assert store.appended == []

"""ListOffsets (2) v1-7: earliest, latest, max-timestamp, or first offset at a time.

Latest under isolation_level 1 (read_committed, v2+) is the last stable offset: a
transaction still open holds it back (docs/transactions.md)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3


class ListOffsetsHandler(Handler):
    api_key, min_version, max_version = 2, 1, 7
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        committed = int(getattr(request, "isolation_level", 0)) == 1
        topics = []
        for t in request.topics:
            parts = []
            for p in t.partitions:
                code, ts, offset = ErrorCode.none, -1, -1
                try:
                    ts, offset = await self._lookup(
                        node, t.name, p.partition_index, p.timestamp, committed
                    )
                except StoreError as exc:
                    code = exc.code
                parts.append(
                    build(
                        mod,
                        "ListOffsetsPartitionResponse",
                        partition_index=p.partition_index,
                        error_code=code,
                        timestamp=ts,
                        offset=offset,
                        leader_epoch=0 if code == ErrorCode.none else -1,
                    )
                )
            topics.append(
                build(mod, "ListOffsetsTopicResponse", name=t.name, partitions=tuple(parts))
            )
        return build(
            mod, "ListOffsetsResponse", throttle_time=datetime.timedelta(0), topics=tuple(topics)
        )

    async def _lookup(
        self, node: Node, topic: str, partition: int, timestamp: int, committed: bool
    ) -> tuple[int, int]:
        part = node.partition(topic, partition)
        if timestamp == LATEST:
            return -1, part.last_stable_offset if committed else part.high_watermark
        if timestamp == EARLIEST:
            return -1, part.log_start
        if timestamp == MAX_TIMESTAMP:
            return await node.max_timestamp_offset(topic, partition)
        if timestamp < 0:
            raise StoreError(ErrorCode.invalid_request, f"unknown special timestamp={timestamp}")
        return await node.offset_for_timestamp(topic, partition, timestamp)

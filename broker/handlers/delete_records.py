"""DeleteRecords (21) v0-2: move a partition's log start offset (the admin clients'
`delete_records`).

Each partition answers on its own: the new low watermark (log start offset) once it is
in the bucket, or Kafka's error — NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION
from the leadership check, OFFSET_OUT_OF_RANGE for an offset above the high watermark
(offset -1 means the high watermark). An offset at or below the log start changes
nothing and answers the log start. Fetches below it get OFFSET_OUT_OF_RANGE and
ListOffsets EARLIEST answers it (docs/topics.md "Deleting records").
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class DeleteRecordsHandler(Handler):
    api_key, min_version, max_version = 21, 0, 2

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        topics = []
        for t in request.topics:
            parts = []
            for p in t.partitions:
                code, low = ErrorCode.none, -1
                try:
                    if not topic_allowed(node, Op.DELETE, t.name):
                        raise StoreError(ErrorCode.topic_authorization_failed, "no DELETE")
                    low = await node.delete_records(t.name, p.partition_index, int(p.offset))
                except StoreError as exc:
                    code = exc.code
                parts.append(
                    build(
                        mod,
                        "DeleteRecordsPartitionResult",
                        partition_index=p.partition_index,
                        low_watermark=low,
                        error_code=code,
                    )
                )
            topics.append(
                build(mod, "DeleteRecordsTopicResult", name=t.name, partitions=tuple(parts))
            )
        return build(
            mod,
            "DeleteRecordsResponse",
            throttle_time=datetime.timedelta(0),
            topics=tuple(topics),
        )

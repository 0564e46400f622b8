"""DeleteRecords: moving a partition's log start offset (docs/topics.md "Deleting records").

Owns: the rule (only up; -1 is the high watermark; above it OFFSET_OUT_OF_RANGE) and the
`log_start` stream op that makes it durable. The op is committed to the leader's stream
before the call returns, in both durability modes; `storage/stream_state.py` folds it
into the partition's index, which carries it to a restarted broker or a new owner.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError
from tidelog.storage.partition_log import PartitionLog

log = logging.getLogger(__name__)

StreamOps = Callable[[Sequence[dict[str, Any]]], Awaitable[int]]


async def delete_records(part: PartitionLog, offset: int, stream_ops: StreamOps) -> int:
    """Move the log start up to `offset` (-1: the high watermark); the new log start,
    once it is in the bucket. Records below it are no longer served (their objects go
    with the retention work)."""
    topic, partition = part.key
    target = part.high_watermark if offset == -1 else offset
    if target < 0 or target > part.high_watermark:
        raise StoreError(
            ErrorCode.offset_out_of_range,
            f"delete records offset={offset} outside [0, {part.high_watermark}] "
            f"topic={topic} partition={partition}",
        )
    if target > part.log_start:
        await stream_ops(
            [{"op": "log_start", "topic": topic, "partition": partition, "offset": target}]
        )
        log.info("deleted records topic=%s partition=%d log_start=%d", topic, partition, target)
    return part.log_start

"""ListOffsets (2) v1-9: earliest, latest, max-timestamp, or first offset at a time.

v8 adds -4 EARLIEST_LOCAL_TIMESTAMP (KIP-405) and v9 -5 LATEST_TIERED_TIMESTAMP
(KIP-1005). tidelog has one tier, the bucket, and no local-only part of a log, so it
answers both as Kafka does with tiered storage off (UnifiedLog.fetchOffsetByTimestamp):
earliest-local is the log start, latest-tiered is offset -1 with epoch -1 ("nothing
tiered"). A special timestamp a version does not have (-3 before v7, -4 before v8, -5
before v9, any other negative) answers UNSUPPORTED_VERSION, as Kafka's does
(docs/protocol.md, "ListOffsets").

Latest under isolation_level 1 (read_committed, v2+) is the last stable offset: a
transaction still open holds it back (docs/transactions.md). Each answer carries the
leader epoch that wrote the offset; a `current_leader_epoch` (v4+) other than ours is
FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH (docs/leader-epochs.md)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError
from tidelog.storage.leader_epochs import check_current_epoch, epoch_at

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node
    from tidelog.storage.partition_log import PartitionLog

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
# The first version that may ask for each special timestamp.
_SPECIAL_SINCE = {LATEST: 0, EARLIEST: 0, MAX_TIMESTAMP: 7, EARLIEST_LOCAL: 8, LATEST_TIERED: 9}


class ListOffsetsHandler(Handler):
    api_key, min_version, max_version = 2, 1, 9
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        committed = int(getattr(request, "isolation_level", 0)) == 1
        topics = []
        for t in request.topics:
            parts = []
            for p in t.partitions:
                code, ts, offset, epoch = ErrorCode.none, -1, -1, -1
                try:
                    if not topic_allowed(node, Op.DESCRIBE, t.name):
                        raise StoreError(ErrorCode.topic_authorization_failed, "no DESCRIBE")
                    _check_special(p.timestamp, header.api_version)
                    ts, offset, epoch = await self._lookup(
                        node,
                        t.name,
                        p.partition_index,
                        p.timestamp,
                        committed,
                        getattr(p, "current_leader_epoch", -1),
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
                        leader_epoch=epoch,
                    )
                )
            topics.append(
                build(mod, "ListOffsetsTopicResponse", name=t.name, partitions=tuple(parts))
            )
        return build(
            mod, "ListOffsetsResponse", throttle_time=datetime.timedelta(0), topics=tuple(topics)
        )

    async def _lookup(
        self,
        node: Node,
        topic: str,
        partition: int,
        timestamp: int,
        committed: bool,
        current_epoch: int,
    ) -> tuple[int, int, int]:
        """(timestamp, offset, leader epoch of that offset)."""
        part = node.partition(topic, partition)
        code = check_current_epoch(part.leader_epoch, current_epoch)
        if code != ErrorCode.none:
            raise StoreError(
                code,
                f"current leader epoch is not ours topic={topic} partition={partition} "
                f"current_leader_epoch={current_epoch} leader_epoch={part.leader_epoch}",
            )
        if timestamp == LATEST_TIERED:
            return -1, -1, -1  # nothing is tiered: the bucket is the only tier
        ts, offset = await self._find(node, part, topic, partition, timestamp, committed)
        return ts, offset, epoch_at(part.state.epochs, offset) if offset >= 0 else -1

    async def _find(
        self,
        node: Node,
        part: PartitionLog,
        topic: str,
        partition: int,
        timestamp: int,
        committed: bool,
    ) -> tuple[int, int]:
        if timestamp == LATEST:
            return -1, part.last_stable_offset if committed else part.high_watermark
        if timestamp in (EARLIEST, EARLIEST_LOCAL):
            return -1, part.log_start
        if timestamp == MAX_TIMESTAMP:
            return await node.max_timestamp_offset(topic, partition)
        return await node.offset_for_timestamp(topic, partition, timestamp)


def _check_special(timestamp: int, version: int) -> None:
    """A negative timestamp must be a special one this version has."""
    if timestamp < 0 and version < _SPECIAL_SINCE.get(timestamp, 1 << 15):
        raise StoreError(
            ErrorCode.unsupported_version,
            f"special timestamp not in this version timestamp={timestamp} api_version={version}",
        )

"""OffsetForLeaderEpoch (23) v0-4: where a leader epoch ends (KIP-101, KIP-320).

A consumer that saw a partition move asks, for the epoch of the last record it
fetched, the end offset of that epoch on the new leader; an end offset below its
position means records it saw are gone (truncation), otherwise it carries on. The epoch
map and the answer are storage/leader_epochs.py's (docs/leader-epochs.md): the largest
epoch <= the requested one and the start of the next epoch, or for the current epoch
the high watermark. tidelog has no followers, so every asker is answered as Kafka
answers consumers: nothing above the high watermark is part of any epoch yet (it may
still be given back). v0-1 (no current_leader_epoch: not checked; v0 answers no epoch)
come from protocol/legacy_schemas.py, as kio has no schema for them.
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
from tidelog.storage.leader_epochs import (
    UNDEFINED_EPOCH,
    UNDEFINED_OFFSET,
    as_leader_epoch,
    check_current_epoch,
    end_offset_for,
)

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class OffsetForLeaderEpochHandler(Handler):
    api_key, min_version, max_version = 23, 0, 4
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        topics = []
        for t in request.topics:
            parts = []
            for p in t.partitions:
                code, epoch, offset = self._answer(
                    node,
                    t.topic,
                    p.partition,
                    getattr(p, "current_leader_epoch", UNDEFINED_EPOCH),
                    p.leader_epoch,
                )
                parts.append(
                    build(
                        mod,
                        "EpochEndOffset",
                        error_code=code,
                        partition=p.partition,
                        leader_epoch=epoch,
                        end_offset=offset,
                    )
                )
            topics.append(
                build(mod, "OffsetForLeaderTopicResult", topic=t.topic, partitions=tuple(parts))
            )
        return build(
            mod,
            "OffsetForLeaderEpochResponse",
            throttle_time=datetime.timedelta(0),
            topics=tuple(topics),
        )

    def _answer(
        self, node: Node, topic: str, partition: int, current: int, requested: int
    ) -> tuple[ErrorCode, int, int]:
        if not topic_allowed(node, Op.DESCRIBE, topic):
            return ErrorCode.topic_authorization_failed, UNDEFINED_EPOCH, UNDEFINED_OFFSET
        try:
            part = node.partition(topic, partition)
        except StoreError as exc:
            return exc.code, UNDEFINED_EPOCH, UNDEFINED_OFFSET
        ours = part.leader_epoch
        code = check_current_epoch(ours, current)
        if code != ErrorCode.none:
            return code, UNDEFINED_EPOCH, UNDEFINED_OFFSET
        epoch, offset = end_offset_for(part.state.epochs, requested, ours, part.high_watermark)
        return ErrorCode.none, as_leader_epoch(epoch), offset

"""OffsetDelete (47) v0: drop committed offsets of a group that has no live members.

Kafka refuses a partition whose topic the group is consuming (GROUP_SUBSCRIBED_TO_TOPIC).
We do not track subscriptions, so while the group has members every partition is
refused that way. An unknown group is GROUP_ID_NOT_FOUND at top level (no topics listed);
a partition of an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, group_allowed, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class OffsetDeleteHandler(Handler):
    api_key, min_version, max_version = 47, 0, 0

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        group = node.live_group(request.group_id)
        committed = node.committed_offsets(request.group_id)
        top = ErrorCode.none
        errors: dict[tuple[str, int], ErrorCode] = {}
        doomed: list[tuple[str, int]] = []
        if not group_allowed(node, Op.DELETE, request.group_id):
            top = ErrorCode.group_authorization_failed
        elif not node.coordinates(request.group_id):
            top = ErrorCode.not_coordinator
        elif group is None and not committed:
            top = ErrorCode.group_id_not_found
        requested = () if top is not ErrorCode.none else request.topics
        for topic in requested:
            for p in topic.partitions:
                key = (topic.name, p.partition_index)
                if not topic_allowed(node, Op.READ, topic.name):
                    errors[key] = ErrorCode.topic_authorization_failed
                elif group is not None and group.members:
                    errors[key] = ErrorCode.group_subscribed_to_topic
                elif not node.partition_exists(key):
                    errors[key] = ErrorCode.unknown_topic_or_partition
                else:
                    errors[key] = ErrorCode.none
                    if key in committed:
                        doomed.append(key)
        if doomed:
            try:
                await node.delete_offsets(request.group_id, doomed)
            except StoreError as exc:
                errors.update({key: exc.code for key in doomed})
        topics = tuple(
            build(
                mod,
                "OffsetDeleteResponseTopic",
                name=topic.name,
                partitions=tuple(
                    build(
                        mod,
                        "OffsetDeleteResponsePartition",
                        partition_index=p.partition_index,
                        error_code=errors[(topic.name, p.partition_index)],
                    )
                    for p in topic.partitions
                ),
            )
            for topic in requested
        )
        return build(
            mod,
            "OffsetDeleteResponse",
            error_code=top,
            throttle_time=datetime.timedelta(0),
            topics=topics,
        )

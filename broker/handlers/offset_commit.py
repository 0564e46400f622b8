"""OffsetCommit (8) v2-8: membership check, then the offsets made durable in the bucket.

A commit with generation -1 and no member id is Kafka's "simple" commit (assign() plus
commit, or an admin altering offsets): allowed for a group with no live members. Any
membership error applies to every partition; so does a store failure. Partitions of
unknown topics get UNKNOWN_TOPIC_OR_PARTITION and the rest are still stored.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.queries import validate_commit
from tidelog.broker.handlers.authz import Op, group_allowed, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

MAX_METADATA_CHARS = 4096  # Kafka's offset.metadata.max.bytes default


class OffsetCommitHandler(Handler):
    api_key, min_version, max_version = 8, 2, 8

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        group_id: str = request.group_id
        errors: dict[tuple[str, int], ErrorCode] = {}
        rows: list[tuple[str, int, int, int, str | None]] = []
        # Kafka checks the ACL first: a principal without READ learns nothing else.
        common = (
            self._check_group(node, request)
            if group_allowed(node, Op.READ, group_id)
            else ErrorCode.group_authorization_failed
        )
        for topic in request.topics:
            for p in topic.partitions:
                key = (topic.name, p.partition_index)
                metadata = p.committed_metadata or ""
                if common is not ErrorCode.none:
                    errors[key] = common
                elif not topic_allowed(node, Op.READ, topic.name):
                    errors[key] = ErrorCode.topic_authorization_failed
                elif not node.partition_exists(key):
                    errors[key] = ErrorCode.unknown_topic_or_partition
                elif len(metadata) > MAX_METADATA_CHARS:
                    errors[key] = ErrorCode.offset_metadata_too_large
                else:
                    epoch = getattr(p, "committed_leader_epoch", -1)
                    rows.append(
                        (topic.name, p.partition_index, p.committed_offset, epoch, metadata)
                    )
                    errors[key] = ErrorCode.none
        try:
            await node.commit_offsets(group_id, rows)
        except StoreError as exc:
            for t, partition, *_ in rows:
                errors[(t, partition)] = exc.code
        return self._response(header.api_version, request, errors)

    @staticmethod
    def _check_group(node: Node, request: Any) -> ErrorCode:
        if not request.group_id:
            return ErrorCode.invalid_group_id
        if not node.coordinates(request.group_id):
            return ErrorCode.not_coordinator
        return validate_commit(
            node.live_group(request.group_id),
            request.member_id,
            getattr(request, "group_instance_id", None),
            request.generation_id_or_member_epoch,
        )

    def _response(
        self, version: int, request: Any, errors: dict[tuple[str, int], ErrorCode]
    ) -> Any:
        mod = response_module(self.api_key, version)
        topics = tuple(
            build(
                mod,
                "OffsetCommitResponseTopic",
                name=topic.name,
                partitions=tuple(
                    build(
                        mod,
                        "OffsetCommitResponsePartition",
                        partition_index=p.partition_index,
                        error_code=errors[(topic.name, p.partition_index)],
                    )
                    for p in topic.partitions
                ),
            )
            for topic in request.topics
        )
        return build(
            mod, "OffsetCommitResponse", throttle_time=datetime.timedelta(0), topics=topics
        )

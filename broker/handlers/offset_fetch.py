"""OffsetFetch (9) v1-8: committed offsets from the bucket's folded state.

A partition with no committed offset answers offset -1, metadata "" and no error, as
Kafka does; so does an unknown group. Null topics (v2+) mean every partition the group
has committed. v8 batches groups, each with its own error code.

`require_stable` (v7+; librdkafka and the Java client send it under read_committed):
a partition whose offsets an open transaction has staged (TxnOffsetCommit), or whose
transaction's marker has not ended them yet, answers UNSTABLE_OFFSET_COMMIT (retriable)
with offset -1, as Kafka does, so a client asking right after commit_transaction
retries until the offsets it committed are there instead of reading the older ones.
Without it the committed offset is answered as it stands (docs/transactions.md).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, group_allowed, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from types import ModuleType

    from tidelog.broker.handlers.context import Node
    from tidelog.storage.stream_state import CommittedOffset

V8_NAMES = ("OffsetFetchResponseTopics", "OffsetFetchResponsePartitions")
OLD_NAMES = ("OffsetFetchResponseTopic", "OffsetFetchResponsePartition")


class OffsetFetchHandler(Handler):
    api_key, min_version, max_version = 9, 1, 8
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        version = header.api_version
        mod = response_module(self.api_key, version)
        stable = version >= 7 and bool(request.require_stable)
        zero = datetime.timedelta(0)
        if version >= 8:
            groups = tuple(
                build(
                    mod,
                    "OffsetFetchResponseGroup",
                    group_id=g.group_id,
                    topics=_topics(mod, V8_NAMES, node, g.group_id, g.topics, stable),
                    error_code=_group_error(node, g.group_id),
                )
                for g in request.groups
            )
            return build(mod, "OffsetFetchResponse", throttle_time=zero, groups=groups)
        topics = _topics(mod, OLD_NAMES, node, request.group_id, request.topics, stable)
        return build(
            mod,
            "OffsetFetchResponse",
            throttle_time=zero,
            topics=topics,
            error_code=_group_error(node, request.group_id),
        )


def _group_error(node: Node, group_id: str) -> ErrorCode:
    if not group_allowed(node, Op.DESCRIBE, group_id):
        return ErrorCode.group_authorization_failed
    return ErrorCode.none if node.coordinates(group_id) else ErrorCode.not_coordinator


def _wanted(
    committed: Mapping[tuple[str, int], CommittedOffset], topics: Iterable[Any] | None
) -> dict[str, list[int]]:
    wanted: dict[str, list[int]] = {}
    if topics is None:
        for topic, partition in sorted(committed):
            wanted.setdefault(topic, []).append(partition)
    else:
        for t in topics:
            wanted.setdefault(t.name, []).extend(t.partition_indexes)
    return wanted


def _topics(
    mod: ModuleType,
    names: tuple[str, str],
    node: Node,
    group_id: str,
    topics: Iterable[Any] | None,
    require_stable: bool,
) -> tuple[Any, ...]:
    topic_cls, partition_cls = names
    if not group_allowed(node, Op.DESCRIBE, group_id):
        return ()
    committed = node.committed_offsets(group_id)
    unstable = node.unstable_offsets(group_id) if require_stable else frozenset()
    out = []
    for topic, partitions in _wanted(committed, topics).items():
        describable = topic_allowed(node, Op.DESCRIBE, topic)
        if topics is None and not describable:
            continue  # all topics asked: Kafka leaves out those the principal may not see
        parts = []
        for index in partitions:
            c = committed.get((topic, index))
            error = ErrorCode.none
            if not describable:
                c, error = None, ErrorCode.topic_authorization_failed
            elif (topic, index) in unstable:
                c, error = None, ErrorCode.unstable_offset_commit
            parts.append(
                build(
                    mod,
                    partition_cls,
                    partition_index=index,
                    committed_offset=-1 if c is None else c.offset,
                    committed_leader_epoch=-1 if c is None else c.leader_epoch,
                    metadata="" if c is None or c.metadata is None else c.metadata,
                    error_code=error,
                )
            )
        out.append(build(mod, topic_cls, name=topic, partitions=tuple(parts)))
    return tuple(out)

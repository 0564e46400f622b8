"""DescribeLogDirs (35) v1-5: the partitions this broker leads, in its one "log dir".

A Kafka broker answers with each log directory on its disks and, in each, the replicas
it holds and their sizes. A tidelog broker holds no replica on a disk: every partition's
data is in the object store (its WAL is only a buffer in front of it). So it answers
with one log dir, the object store, named by its URL (storage/store_url.py
`store_location`), and in it the
requested partitions (all of them when `topics` is null) that this broker leads, as a
Kafka broker lists only the replicas it holds. Asking every broker, as admin clients
do, lists every partition once. A partition's size is the bytes of its batches in the
bucket plus those not uploaded yet (docs/protocol.md, "DescribeLogDirs"); offset_lag is
0 (the leader is never behind itself) and is_future_key false (nothing moves between
dirs). total_bytes and usable_bytes (v4+) are -1: an object store has no volume size.

DESCRIBE on the CLUSTER is required, as in Kafka: without it the answer lists no dir
and, from v3, carries CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError
from tidelog.storage.store_url import store_location

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node
    from tidelog.storage.partition_log import PartitionLog

UNKNOWN_BYTES = -1


class DescribeLogDirsHandler(Handler):
    api_key, min_version, max_version = 35, 1, 5
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        authorized = cluster_allowed(node, Op.DESCRIBE)
        results: tuple[Any, ...] = ()
        if authorized:
            topics = tuple(
                build(mod, "DescribeLogDirsTopic", name=name, partitions=tuple(parts))
                for name, indexes in _requested(node, request.topics)
                if (parts := [_partition(mod, p) for p in _led(node, name, indexes)])
            )
            results = (
                build(
                    mod,
                    "DescribeLogDirsResult",
                    error_code=ErrorCode.none,
                    log_dir=store_location(
                        node.config.object_store, default_root=node.config.object_store_root
                    ),
                    topics=topics,
                    total_bytes=UNKNOWN_BYTES,
                    usable_bytes=UNKNOWN_BYTES,
                    is_cordoned=False,
                ),
            )
        return build(
            mod,
            "DescribeLogDirsResponse",
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.none if authorized else ErrorCode.cluster_authorization_failed,
            results=results,
        )


def _requested(node: Node, topics: Any) -> list[tuple[str, list[int]]]:
    """(topic, partition indexes) asked about; null `topics` is every partition."""
    if topics is None:
        return [(name, list(range(t.partitions))) for name, t in sorted(node.topics().items())]
    return [(t.topic, list(t.partitions)) for t in topics]


def _led(node: Node, topic: str, indexes: list[int]) -> list[PartitionLog]:
    """The partitions of `indexes` this broker leads, each once, in order."""
    out = []
    for index in sorted(set(indexes)):
        try:
            out.append(node.partition(topic, index))
        except StoreError:
            continue  # unknown, or led by another broker: that broker lists it
    return out


def _partition(mod: Any, part: PartitionLog) -> Any:
    return build(
        mod,
        "DescribeLogDirsPartition",
        partition_index=part.state.partition,
        partition_size=part.size_bytes,
        offset_lag=0,
        is_future_key=False,
    )

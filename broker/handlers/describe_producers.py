"""DescribeProducers (61) v0: the producers each partition we lead holds state for.

Per producer: id, epoch, the last sequence it wrote (-1 before its first cached batch),
the last timestamp (-1: producer state does not keep timestamps), the coordinator epoch
(-1: not tracked per producer) and the first offset of its transaction open in this
partition (-1 if none): the offset that holds the last stable offset back. A partition
another broker leads is NOT_LEADER_OR_FOLLOWER, one that does not exist
UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
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
    from types import ModuleType

    from tidelog.broker.handlers.context import Node


class DescribeProducersHandler(Handler):
    api_key, min_version, max_version = 61, 0, 0
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        topics = tuple(
            build(
                mod,
                "TopicResponse",
                name=t.name,
                partitions=tuple(_partition(mod, node, t.name, p) for p in t.partition_indexes),
            )
            for t in request.topics
        )
        return build(
            mod, "DescribeProducersResponse", throttle_time=datetime.timedelta(0), topics=topics
        )


def _partition(mod: ModuleType, node: Node, topic: str, partition: int) -> Any:
    try:
        if not topic_allowed(node, Op.READ, topic):
            raise StoreError(ErrorCode.topic_authorization_failed, f"no READ on topic {topic}")
        producers = node.producers(topic, partition)
    except StoreError as exc:
        return build(
            mod,
            "PartitionResponse",
            partition_index=partition,
            error_code=exc.code,
            error_message=str(exc),
            active_producers=(),
        )
    return build(
        mod,
        "PartitionResponse",
        partition_index=partition,
        error_code=ErrorCode.none,
        error_message=None,
        active_producers=tuple(
            build(
                mod,
                "ProducerState",
                producer_id=p.producer_id,
                producer_epoch=p.producer_epoch,
                last_sequence=p.last_sequence,
                last_timestamp=p.last_timestamp,
                coordinator_epoch=-1,
                current_txn_start_offset=p.txn_start_offset,
            )
            for p in producers
        ),
    )

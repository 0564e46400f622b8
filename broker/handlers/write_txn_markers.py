"""WriteTxnMarkers (27) v1: a transaction coordinator on another broker marks our
partitions.

Each (topic, partition) gets the COMMIT or ABORT control batch, answered once durable
here; `__consumer_offsets` partition N stands for the consumer groups of slot N that
this broker coordinates: their offsets staged by the producer are committed or
dropped. Only brokers send this (broker/txn_links.py); a partition we do not lead
answers NOT_LEADER_OR_FOLLOWER and the coordinator retries at the new leader.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class WriteTxnMarkersHandler(Handler):
    api_key, min_version, max_version = 27, 1, 1

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        answers = []
        # Brokers send markers to one another: Kafka asks CLUSTER_ACTION on the cluster.
        permitted = cluster_allowed(node, Op.CLUSTER_ACTION)
        for marker in request.markers:
            work = [
                (topic.name, int(index))
                for topic in marker.topics
                for index in topic.partition_indexes
            ]
            codes: list[ErrorCode] = [ErrorCode.cluster_authorization_failed] * len(work)
            if permitted:
                codes = list(
                    await asyncio.gather(
                        *(
                            node.write_txn_marker(
                                topic,
                                index,
                                producer_id=int(marker.producer_id),
                                producer_epoch=int(marker.producer_epoch),
                                commit=bool(marker.transaction_result),
                                coordinator_epoch=int(marker.coordinator_epoch),
                            )
                            for topic, index in work
                        )
                    )
                )
            by_topic: dict[str, list[tuple[int, ErrorCode]]] = {}
            for (topic, index), code in zip(work, codes, strict=True):
                by_topic.setdefault(topic, []).append((index, code))
            answers.append(
                build(
                    mod,
                    "WritableTxnMarkerResult",
                    producer_id=marker.producer_id,
                    topics=tuple(
                        build(
                            mod,
                            "WritableTxnMarkerTopicResult",
                            name=topic,
                            partitions=tuple(
                                build(
                                    mod,
                                    "WritableTxnMarkerPartitionResult",
                                    partition_index=i,
                                    error_code=c,
                                )
                                for i, c in rows
                            ),
                        )
                        for topic, rows in by_topic.items()
                    ),
                )
            )
        return build(mod, "WriteTxnMarkersResponse", markers=tuple(answers))

"""Metadata (3) v0-12: brokers, topics and partitions; auto-creates topics if allowed.

Brokers are the live members of the cluster (from the metadata log). Each partition's
leader is the broker that owns it; the replica and ISR lists name only that broker,
whatever replication factor the topic was created with (the object store does the
replicating). A partition between owners has leader -1 and LEADER_NOT_AVAILABLE, which
clients retry.
"""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import (
    Op,
    Res,
    authorized_operations,
    create_topic_allowed,
    topic_allowed,
)
from tidelog.broker.handlers.base import Handler, broker_address
from tidelog.broker.security.acl import CLUSTER_NAME
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import INTERNAL_TOPICS, validate_topic_name, validate_user_topic_name

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class MetadataHandler(Handler):
    api_key, min_version, max_version = 3, 0, 12

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        # Clients ask again when something moved: answer from a metadata log folded in
        # the last 100 ms, and adopt keys just assigned to us soon after.
        await node.fresh_metadata()
        mod = response_module(self.api_key, header.api_version)
        version = header.api_version
        # v0 and an empty list before v1 meant "all topics"; from v1 on null means all.
        if request.topics is None or (version == 0 and not request.topics):
            # Only the topics the principal may describe (Kafka hides the others).
            names = [n for n in sorted(node.topics()) if topic_allowed(node, Op.DESCRIBE, n)]
            wanted_all = True
        else:
            names = []
            for t in request.topics:
                name = t.name
                if name is None and getattr(t, "topic_id", None) is not None:
                    name = node.topic_name(t.topic_id)
                if name is not None:
                    names.append(name)
            wanted_all = False
        allow_create = version < 4 or bool(request.allow_auto_topic_creation)
        # v8+: the principal's operations on each topic (and, v8-10, the cluster) if asked.
        topic_ops = getattr(request, "include_topic_authorized_operations", False)
        cluster_ops = getattr(request, "include_cluster_authorized_operations", False)
        topics = [
            await self._topic(node, mod, name, allow_create and not wanted_all, topic_ops)
            for name in names
        ]
        brokers = tuple(
            build(mod, "MetadataResponseBroker", node_id=m.node, host=a[0], port=a[1], rack=None)
            for m in node.live_brokers()
            if (a := broker_address(m)) is not None
        )
        return build(
            mod,
            "MetadataResponse",
            throttle_time=datetime.timedelta(0),
            brokers=brokers,
            cluster_id=node.cluster_id,
            controller_id=node.controller_id(),
            topics=tuple(topics),
            cluster_authorized_operations=authorized_operations(
                node, Res.CLUSTER, CLUSTER_NAME, requested=cluster_ops
            ),
        )

    async def _topic(
        self, node: Node, mod: Any, name: str, allow_create: bool, with_operations: bool
    ) -> Any:
        error = ErrorCode.none
        try:
            if not topic_allowed(node, Op.DESCRIBE, name):
                raise StoreError(ErrorCode.topic_authorization_failed, f"no DESCRIBE on {name}")
            validate_topic_name(name)
            state = node.topic(name)
            if state is None:
                # Kafka's internal names are refused, not "unknown" and retried for ever.
                validate_user_topic_name(name)
                if allow_create and not create_topic_allowed(node, name):
                    raise StoreError(ErrorCode.topic_authorization_failed, f"no CREATE of {name}")
                if allow_create:
                    state = await node.ensure_topic(name)
            if state is None:
                error = ErrorCode.unknown_topic_or_partition
        except StoreError as exc:
            state, error = None, exc.code
        partitions = ()
        if state is not None:
            rows = []
            for p in range(state.partitions):
                owner = node.partition_leader(name, p)
                leader = owner.node_id if owner is not None else -1
                rows.append(
                    build(
                        mod,
                        "MetadataResponsePartition",
                        error_code=ErrorCode.none
                        if owner is not None
                        else ErrorCode.leader_not_available,
                        partition_index=p,
                        leader_id=leader,
                        leader_epoch=owner.epoch if owner is not None else -1,
                        replica_nodes=(leader,) if owner is not None else (),
                        isr_nodes=(leader,) if owner is not None else (),
                        offline_replicas=(),
                    )
                )
            partitions = tuple(rows)
        return build(
            mod,
            "MetadataResponseTopic",
            error_code=error,
            name=name,
            topic_id=uuid.UUID(state.topic_id) if state is not None else uuid.UUID(int=0),
            is_internal=name in INTERNAL_TOPICS,
            partitions=partitions,
            # Kafka fills them in for every topic the principal may describe, an unknown
            # one included, and not for one answered TOPIC_AUTHORIZATION_FAILED.
            topic_authorized_operations=authorized_operations(
                node,
                Res.TOPIC,
                name,
                requested=with_operations and error != ErrorCode.topic_authorization_failed,
            ),
        )

"""The ACL check every handler makes: `allowed(node, op, rtype, name)`.

Owns: asking `node.security` about the request being handled, whose principal and
host the connection put in `client_principal` and `client_host` (base.py). With
`--authorizer acl` off, `node.security.enabled` is False and nothing else is read:
the produce and fetch paths pay one attribute check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidelog.broker.handlers.base import client_host, client_principal
from tidelog.broker.security.acl import CLUSTER_NAME, AclOperation, ResourceType

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

Op = AclOperation
Res = ResourceType


def allowed(node: Node, operation: AclOperation, rtype: ResourceType, name: str) -> bool:
    security = node.security
    if not security.enabled:
        return True
    return security.authorize(client_principal.get(), client_host.get(), operation, rtype, name)


def cluster_allowed(node: Node, operation: AclOperation) -> bool:
    return allowed(node, operation, ResourceType.CLUSTER, CLUSTER_NAME)


def topic_allowed(node: Node, operation: AclOperation, topic: str) -> bool:
    return allowed(node, operation, ResourceType.TOPIC, topic)


def group_allowed(node: Node, operation: AclOperation, group: str) -> bool:
    return allowed(node, operation, ResourceType.GROUP, group)


def txn_allowed(node: Node, operation: AclOperation, transactional_id: str) -> bool:
    return allowed(node, operation, ResourceType.TRANSACTIONAL_ID, transactional_id)


# Kafka's AclEntry.supportedOperations: the operations an authorized-operations bit field
# (Metadata v8+, DescribeCluster, DescribeGroups v3+) is made of, per resource type.
# GROUP is Kafka 3.x's set: DESCRIBE_CONFIGS and ALTER_CONFIGS came with group configs (4.0).
_SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (
        Op.READ,
        Op.WRITE,
        Op.CREATE,
        Op.DESCRIBE,
        Op.DELETE,
        Op.ALTER,
        Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (Op.READ, Op.DESCRIBE, Op.DELETE),
    ResourceType.CLUSTER: (
        Op.CREATE,
        Op.CLUSTER_ACTION,
        Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS,
        Op.IDEMPOTENT_WRITE,
        Op.ALTER,
        Op.DESCRIBE,
    ),
}

# What a response carries when the client did not ask for authorized operations.
OPERATIONS_OMITTED = -(2**31)


def authorized_operations(
    node: Node, rtype: ResourceType, name: str, *, requested: bool | None
) -> int:
    """The bit field (bit n = AclOperation n) of what the principal may do on the
    resource, as Kafka's authorizedOperations; OPERATIONS_OMITTED unless `requested`."""
    if not requested:
        return OPERATIONS_OMITTED
    bits = 0
    for op in _SUPPORTED_OPERATIONS[rtype]:
        if allowed(node, op, rtype, name):
            bits |= 1 << op
    return bits


def create_topic_allowed(node: Node, topic: str) -> bool:
    """Kafka: CREATE on the cluster, or on the topic."""
    return cluster_allowed(node, Op.CREATE) or topic_allowed(node, Op.CREATE, topic)


def idempotent_allowed(node: Node, topics: list[str] | None = None) -> bool:
    """An idempotent producer: IDEMPOTENT_WRITE on the cluster, or (Kafka >= 3.0)
    WRITE on the topics it writes (`topics` None: on any topic)."""
    if cluster_allowed(node, Op.IDEMPOTENT_WRITE):
        return True
    if topics is None:
        return any(topic_allowed(node, Op.WRITE, t) for t in node.topics())
    return all(topic_allowed(node, Op.WRITE, t) for t in topics)

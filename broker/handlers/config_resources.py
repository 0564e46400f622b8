"""What AlterConfigs (33) and IncrementalAlterConfigs (44) share: one resource's answer.

Owns: the resource types tidelog knows, refusing a resource named twice in one
request, and what each type may change (docs/topics.md, "Changing topic configs"):

* TOPIC (2): the topic's override set becomes `build(overrides in force)`, checked with
  the topic config table; `validate_only` runs the same checks and changes nothing;
* BROKER (4) named "" (Kafka's `--entity-default`): the cluster's dynamic defaults of
  topic configs, `build(defaults in force)`, checked (storage/cluster_defaults.py) and
  committed like a topic's change, so every broker folds them;
* BROKER (4) named by this broker's id: Kafka's per-broker dynamic configs that do
  nothing here (storage/broker_configs.py: Kerberos login, thread counts), committed as
  this broker's set; any other name is INVALID_REQUEST naming it, as Kafka answers for a
  config that is not dynamic (brokers are interchangeable; the rest are `tidelog serve`
  options); another broker's id is INVALID_REQUEST, as Kafka's "unexpected broker id";
* BROKER_LOGGER (8): log levels are `--log-level` only: INVALID_REQUEST naming them;
* anything else: INVALID_REQUEST.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from tidelog.broker.handlers.authz import Op, cluster_allowed, topic_allowed
from tidelog.broker.security.acl import AclOperation
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError
from tidelog.storage.topic_config import ConfigBuild

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
CLUSTER_DEFAULT = ""  # the BROKER resource name of Kafka's `--entity-default`

Answer = tuple[ErrorCode, str | None]


def duplicated(resources: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Resources named more than once in one request: Kafka answers each INVALID_REQUEST."""
    counts = Counter(resources)
    return {resource for resource, n in counts.items() if n > 1}


def config_allowed(node: Node, operation: AclOperation, resource_type: int, name: str) -> bool:
    """Kafka's check of a config resource: the topic, or (brokers, loggers) the cluster."""
    if resource_type == TOPIC:
        return topic_allowed(node, operation, name)
    if resource_type in (BROKER, BROKER_LOGGER):
        return cluster_allowed(node, operation)
    return True  # an unknown type is answered INVALID_REQUEST anyway


def config_denied(resource_type: int) -> Answer:
    if resource_type == TOPIC:
        return ErrorCode.topic_authorization_failed, "Topic authorization failed."
    return ErrorCode.cluster_authorization_failed, "Cluster authorization failed."


def duplicate_answer(resource_type: int, name: str) -> Answer:
    return (
        ErrorCode.invalid_request,
        f"resource named more than once in one request resource_type={resource_type} "
        f"resource_name={name}",
    )


async def _change(
    check_shape: Callable[[], None],
    check: Callable[[], object],
    alter: Callable[[], Awaitable[object]],
    *,
    validate_only: bool,
) -> Answer:
    try:
        check_shape()
        if validate_only:
            check()
        else:
            await alter()
    except StoreError as exc:
        return exc.code, str(exc)
    return ErrorCode.none, None


async def alter_resource(
    node: Node,
    resource_type: int,
    name: str,
    keys: Sequence[str],
    build: ConfigBuild,
    *,
    validate_only: bool,
    check_shape: Callable[[], None] = lambda: None,
) -> Answer:
    """The answer for one resource; a TOPIC's or the cluster default's change is in the
    metadata log on return. `check_shape` raises StoreError for what is refused before
    the resource is looked at (a key given twice, ...)."""
    listed = ",".join(keys)
    if not config_allowed(node, Op.ALTER_CONFIGS, resource_type, name):
        return config_denied(resource_type)
    if resource_type == TOPIC:
        return await _change(
            check_shape,
            functools.partial(node.check_topic_configs, name, build),
            functools.partial(node.alter_topic_configs, name, build),
            validate_only=validate_only,
        )
    if resource_type == BROKER and name == CLUSTER_DEFAULT:
        return await _change(
            check_shape,
            functools.partial(node.check_cluster_configs, build),
            functools.partial(node.alter_cluster_configs, build),
            validate_only=validate_only,
        )
    if resource_type == BROKER:
        if name != str(node.node_id):
            return (
                ErrorCode.invalid_request,
                f"unexpected broker id, expected {node.node_id} or empty broker={name}",
            )
        return await _change(
            check_shape,
            functools.partial(node.check_broker_configs, build),
            functools.partial(node.alter_broker_configs, build),
            validate_only=validate_only,
        )
    if resource_type == BROKER_LOGGER:
        return (
            ErrorCode.invalid_request,
            f"broker log levels cannot be changed at run time; use --log-level loggers={listed}",
        )
    return (
        ErrorCode.invalid_request,
        f"unsupported resource type resource_type={resource_type} resource_name={name}",
    )

"""DescribeConfigs (32) v1-4: topic configs (defaults and overrides) and broker configs.

Each value carries its source as Kafka reports it: DYNAMIC_TOPIC_CONFIG for a topic
override, DYNAMIC_DEFAULT_BROKER_CONFIG for the cluster's dynamic default of a topic
config (storage/cluster_defaults.py), DEFAULT_CONFIG for a topic default,
STATIC_BROKER_CONFIG for a broker setting (a `tidelog serve` option),
DYNAMIC_BROKER_CONFIG for a per-broker dynamic config set on the broker's own id
(storage/broker_configs.py). With
`include_synonyms` (v1+) a topic config lists, highest priority first, the override (if
any), the cluster default (if set) and the default, the last two under Kafka's
broker-level name (storage/config_synonyms.py; none for configs Kafka gives no broker
default), as Kafka's broker does; the value's source is the first of them. The BROKER
resource "" lists the cluster defaults set; a broker's own id lists its settings and
every cluster default it could have. The metadata log is folded first if older than a
moment, so a change made through another broker is seen as soon as it is committed.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.config_resources import (
    CLUSTER_DEFAULT,
    config_allowed,
    config_denied,
)
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.broker_configs import config_type as broker_config_type
from tidelog.storage.cluster_defaults import DYNAMIC_DEFAULTS
from tidelog.storage.config_synonyms import BROKER_SYNONYMS
from tidelog.storage.topic_config import TOPIC_CONFIGS, ConfigType, effective, valid_overrides

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

TOPIC, BROKER = 2, 4
# ConfigSource values from Kafka's DescribeConfigsResponse.
DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG = 1, 2, 3
STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 4, 5

Synonym = tuple[str, str, int]  # name, value, source
Entry = tuple[str, int, list[Synonym], bool]  # value, source, synonyms, read only


def topic_synonyms(
    name: str, overrides: dict[str, str], defaults: dict[str, str] | None = None
) -> list[Synonym]:
    """The override, the cluster default, then the default, the last two under Kafka's
    broker name: highest priority first. `defaults`: the cluster's, by topic name."""
    synonyms: list[Synonym] = []
    if name in overrides:
        synonyms.append((name, overrides[name], DYNAMIC_TOPIC_CONFIG))
    broker_name = BROKER_SYNONYMS.get(name)
    if broker_name is not None:
        if defaults and name in defaults:
            synonyms.append((broker_name, defaults[name], DYNAMIC_DEFAULT_BROKER_CONFIG))
        synonyms.append((broker_name, TOPIC_CONFIGS[name].default, DEFAULT_CONFIG))
    return synonyms


def topic_entries(overrides: dict[str, str], defaults: dict[str, str]) -> dict[str, Entry]:
    """Every topic config: the value in force, its source (the first synonym's) and the
    synonyms."""
    entries: dict[str, Entry] = {}
    for k in TOPIC_CONFIGS:
        synonyms = topic_synonyms(k, overrides, defaults)
        source = synonyms[0][2] if synonyms else DEFAULT_CONFIG
        entries[k] = (effective(overrides, k, defaults), source, synonyms, False)
    return entries


def broker_entries(node: Node, *, per_broker: bool) -> dict[str, Entry]:
    """The cluster default entity: the defaults set. A broker: its settings, and every
    cluster default it could have (set or not), as Kafka lists all of a broker's."""
    defaults = node.cluster_defaults()
    entries: dict[str, Entry] = {}
    if per_broker:
        for k, v in broker_configs(node).items():
            entries[k] = (v, STATIC_BROKER_CONFIG, [(k, v, STATIC_BROKER_CONFIG)], True)
        for k, v in node.broker_dynamic_configs().items():
            entries[k] = (v, DYNAMIC_BROKER_CONFIG, [(k, v, DYNAMIC_BROKER_CONFIG)], False)
    for broker_name, topic_name in DYNAMIC_DEFAULTS.items():
        synonyms: list[Synonym] = []
        if topic_name in defaults:
            synonyms.append((broker_name, defaults[topic_name], DYNAMIC_DEFAULT_BROKER_CONFIG))
        if per_broker:  # a broker's synonyms go on to the default, as Kafka's
            synonyms.append((broker_name, TOPIC_CONFIGS[topic_name].default, DEFAULT_CONFIG))
        if synonyms:
            _, value, source = synonyms[0]
            entries[broker_name] = (value, source, synonyms, False)
    return entries


def _config_type(resource_type: int, name: str) -> int:
    """ConfigType (v3+): a topic config's from the table (also for its broker name);
    a per-broker one's from storage/broker_configs.py; other broker configs say LONG."""
    if resource_type == BROKER and (per_broker := broker_config_type(name)) is not None:
        return int(per_broker)
    topic_name = name if resource_type == TOPIC else DYNAMIC_DEFAULTS.get(name)
    key = TOPIC_CONFIGS.get(topic_name) if topic_name is not None else None
    return int(key.type if key is not None else ConfigType.LONG)


class DescribeConfigsHandler(Handler):
    api_key, min_version, max_version = 32, 1, 4
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        if any(res.resource_type in (TOPIC, BROKER) for res in request.resources):
            await node.fresh_metadata()  # a change made through another broker
        results = []
        for res in request.resources:
            code, message = ErrorCode.none, None
            entries: dict[str, Entry] = {}
            if not config_allowed(node, Op.DESCRIBE_CONFIGS, res.resource_type, res.resource_name):
                code, message = config_denied(res.resource_type)
            elif res.resource_type == TOPIC:
                topic = node.topic(res.resource_name)
                if topic is None:
                    code = ErrorCode.unknown_topic_or_partition
                    message = f"no such topic topic={res.resource_name}"
                else:
                    # What is in force: a bad value an older broker stored is not.
                    overrides = valid_overrides(topic.configs)
                    entries = topic_entries(overrides, node.cluster_defaults())
            elif res.resource_type == BROKER:
                if res.resource_name not in (CLUSTER_DEFAULT, str(node.node_id)):
                    code, message = (
                        ErrorCode.invalid_request,
                        f"unknown broker id={res.resource_name}",
                    )
                else:
                    per_broker = res.resource_name != CLUSTER_DEFAULT
                    entries = broker_entries(node, per_broker=per_broker)
            else:
                code = ErrorCode.invalid_request
                message = f"unsupported resource type resource_type={res.resource_type}"
            keys = res.configuration_keys
            configs = tuple(
                build(
                    mod,
                    "DescribeConfigsResourceResult",
                    name=k,
                    value=v,
                    read_only=read_only,
                    config_source=src,
                    is_default=src == DEFAULT_CONFIG,
                    is_sensitive=False,
                    synonyms=tuple(
                        build(mod, "DescribeConfigsSynonym", name=n, value=sv, source=ss)
                        for n, sv, ss in (synonyms if request.include_synonyms else ())
                    ),
                    config_type=_config_type(res.resource_type, k),
                    documentation=_documentation(res.resource_type, k)
                    if getattr(request, "include_documentation", False)
                    else None,
                )
                for k, (v, src, synonyms, read_only) in sorted(entries.items())
                if keys is None or k in keys
            )
            results.append(
                build(
                    mod,
                    "DescribeConfigsResult",
                    error_code=code,
                    error_message=message,
                    resource_type=res.resource_type,
                    resource_name=res.resource_name,
                    configs=configs,
                )
            )
        return build(
            mod,
            "DescribeConfigsResponse",
            throttle_time=datetime.timedelta(0),
            results=tuple(results),
        )


def _documentation(resource_type: int, name: str) -> str:
    if resource_type == TOPIC:
        return f"Kafka's topic config {name}; what tidelog does with it: docs/topics.md"
    if broker_config_type(name) is not None:
        return f"Kafka's per-broker config {name}; it has no effect in tidelog: docs/topics.md"
    if name in DYNAMIC_DEFAULTS:
        return f"the cluster-wide default of topic config {DYNAMIC_DEFAULTS[name]}: docs/topics.md"
    return f"a tidelog serve option, fixed while the broker runs: {name}"


def broker_configs(node: Node) -> dict[str, str]:
    c = node.config
    return {
        "broker.id": str(c.node_id),
        "auto.create.topics.enable": str(c.auto_create_topics).lower(),
        "num.partitions": str(c.default_partitions),
        "tidelog.max.partitions.per.topic": str(c.max_partitions_per_topic),
        "tidelog.max.partitions": str(c.max_partitions),
        "log.retention.check.interval.ms": str(c.log_retention_check_interval_ms),
        "log.cleaner.backoff.ms": str(c.log_cleaner_backoff_ms),
        "tidelog.segment.object.bytes": str(c.segment_object_bytes),
        "log.segment.delete.delay.ms": str(c.log_segment_delete_delay_ms),
        "socket.request.max.bytes": str(c.max_request_bytes),
        "tidelog.durability": c.durability,
        "tidelog.flush.interval.ms": str(c.flush_interval_ms),
        "tidelog.flush.bytes": str(c.flush_bytes),
    }

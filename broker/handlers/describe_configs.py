"""DescribeConfigs (32) v1-4: topic configs (defaults and overrides) and broker configs.

Each value carries its source as Kafka reports it: DYNAMIC_TOPIC_CONFIG for a topic
override, DEFAULT_CONFIG for a topic default, STATIC_BROKER_CONFIG for a broker
setting (a `tidelog serve` option). With `include_synonyms` (v1+) a topic config lists
the override (if any) and then the default under Kafka's broker-level name
(storage/config_synonyms.py; none for configs Kafka gives no broker default), as
Kafka's broker does. The metadata log is folded first if older than a moment, so a
change made through another broker is seen as soon as it is committed.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.config_resources import config_allowed, config_denied
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.config_synonyms import BROKER_SYNONYMS
from tidelog.storage.topic_config import TOPIC_CONFIGS, ConfigType, valid_overrides

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

TOPIC, BROKER = 2, 4
# ConfigSource values from Kafka's DescribeConfigsResponse.
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5

Synonym = tuple[str, str, int]  # name, value, source


def topic_synonyms(name: str, overrides: dict[str, str]) -> list[Synonym]:
    """The override, then the default under Kafka's broker name: highest priority first."""
    synonyms: list[Synonym] = []
    if name in overrides:
        synonyms.append((name, overrides[name], DYNAMIC_TOPIC_CONFIG))
    broker_name = BROKER_SYNONYMS.get(name)
    if broker_name is not None:
        synonyms.append((broker_name, TOPIC_CONFIGS[name].default, DEFAULT_CONFIG))
    return synonyms


def _config_type(resource_type: int, name: str) -> int:
    """ConfigType (v3+): a topic config's from the table; broker configs say LONG."""
    key = TOPIC_CONFIGS.get(name) if resource_type == TOPIC else None
    return int(key.type if key is not None else ConfigType.LONG)


class DescribeConfigsHandler(Handler):
    api_key, min_version, max_version = 32, 1, 4
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        if any(res.resource_type == TOPIC for res in request.resources):
            await node.fresh_metadata()  # a change made through another broker
        results = []
        for res in request.resources:
            code, message = ErrorCode.none, None
            entries: dict[str, tuple[str, int, list[Synonym]]] = {}
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
                    for k, key in TOPIC_CONFIGS.items():
                        source = DYNAMIC_TOPIC_CONFIG if k in overrides else DEFAULT_CONFIG
                        value = overrides.get(k, key.default)
                        entries[k] = (value, source, topic_synonyms(k, overrides))
            elif res.resource_type == BROKER:
                if res.resource_name not in ("", str(node.node_id)):
                    code, message = (
                        ErrorCode.invalid_request,
                        f"unknown broker id={res.resource_name}",
                    )
                else:
                    for k, v in broker_configs(node).items():
                        entries[k] = (v, STATIC_BROKER_CONFIG, [(k, v, STATIC_BROKER_CONFIG)])
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
                    read_only=res.resource_type == BROKER,
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
                for k, (v, src, synonyms) in sorted(entries.items())
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

"""DescribeConfigs (32) v1-4: topic configs (defaults and overrides) and broker configs."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.topic_config import TOPIC_CONFIGS, ConfigType, valid_overrides

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

TOPIC, BROKER = 2, 4
# ConfigSource values from Kafka's DescribeConfigsResponse.
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5


def _config_type(resource_type: int, name: str) -> int:
    """ConfigType (v3+): a topic config's from the table; broker configs say LONG."""
    key = TOPIC_CONFIGS.get(name) if resource_type == TOPIC else None
    return int(key.type if key is not None else ConfigType.LONG)


class DescribeConfigsHandler(Handler):
    api_key, min_version, max_version = 32, 1, 4
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        results = []
        for res in request.resources:
            code, message = ErrorCode.none, None
            entries: dict[str, tuple[str, int]] = {}
            if res.resource_type == TOPIC:
                topic = node.topic(res.resource_name)
                if topic is None:
                    code = ErrorCode.unknown_topic_or_partition
                    message = f"no such topic topic={res.resource_name}"
                else:
                    for k, key in TOPIC_CONFIGS.items():
                        entries[k] = (key.default, DEFAULT_CONFIG)
                    # What is in force: a bad value an older broker stored is not.
                    for k, v in valid_overrides(topic.configs).items():
                        entries[k] = (v, DYNAMIC_TOPIC_CONFIG)
            elif res.resource_type == BROKER:
                if res.resource_name not in ("", str(node.node_id)):
                    code, message = (
                        ErrorCode.invalid_request,
                        f"unknown broker id={res.resource_name}",
                    )
                else:
                    for k, v in broker_configs(node).items():
                        entries[k] = (v, STATIC_BROKER_CONFIG)
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
                    synonyms=(),
                    config_type=_config_type(res.resource_type, k),
                    documentation=None,
                )
                for k, (v, src) in sorted(entries.items())
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


def broker_configs(node: Node) -> dict[str, str]:
    c = node.config
    return {
        "broker.id": str(c.node_id),
        "auto.create.topics.enable": str(c.auto_create_topics).lower(),
        "num.partitions": str(c.default_partitions),
        "tidelog.max.partitions.per.topic": str(c.max_partitions_per_topic),
        "tidelog.max.partitions": str(c.max_partitions),
        "log.retention.check.interval.ms": str(c.log_retention_check_interval_ms),
        "tidelog.segment.object.bytes": str(c.segment_object_bytes),
        "socket.request.max.bytes": str(c.max_request_bytes),
        "tidelog.durability": c.durability,
        "tidelog.flush.interval.ms": str(c.flush_interval_ms),
        "tidelog.flush.bytes": str(c.flush_bytes),
    }

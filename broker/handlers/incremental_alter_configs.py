"""IncrementalAlterConfigs (44) v0-1: SET, DELETE, APPEND or SUBTRACT per topic config.

Each TOPIC resource's operations apply, in order, to the overrides in force
(`apply_incremental` in storage/topic_config.py: APPEND and SUBTRACT only for list
configs such as `cleanup.policy`); the result is checked with the topic config table
and, built again on the metadata log as it is when committed, becomes the topic's
override set. The BROKER resource named "" (the cluster default) takes the same
operations on Kafka's broker names of topic configs (`log.retention.ms`, ...:
storage/cluster_defaults.py); a broker's own id takes SET and DELETE on its per-broker
configs (storage/broker_configs.py); other BROKER and BROKER_LOGGER resources are
refused per resource (broker/handlers/config_resources.py). `validate_only` checks and
changes nothing.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.config_resources import (
    BROKER,
    CLUSTER_DEFAULT,
    alter_resource,
    duplicate_answer,
    duplicated,
)
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.broker_configs import apply_incremental_broker
from tidelog.storage.cluster_defaults import apply_incremental_defaults
from tidelog.storage.topic_config import ConfigChange, apply_incremental, check_change_shape

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

Apply = Callable[[Mapping[str, str], Sequence[ConfigChange]], dict[str, str]]


def _apply_of(resource_type: int, name: str) -> Apply:
    if resource_type != BROKER:
        return apply_incremental
    return apply_incremental_defaults if name == CLUSTER_DEFAULT else apply_incremental_broker


class IncrementalAlterConfigsHandler(Handler):
    api_key, min_version, max_version = 44, 0, 1

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        twice = duplicated((r.resource_type, r.resource_name) for r in request.resources)
        responses = []
        for res in request.resources:
            changes = [ConfigChange(c.name, int(c.config_operation), c.value) for c in res.configs]
            apply = _apply_of(res.resource_type, res.resource_name)

            def change(
                current: Mapping[str, str],
                changes: list[ConfigChange] = changes,
                apply: Apply = apply,
            ) -> Mapping[str, str | None]:
                return apply(current, changes)

            if (res.resource_type, res.resource_name) in twice:
                code, message = duplicate_answer(res.resource_type, res.resource_name)
            else:
                code, message = await alter_resource(
                    node,
                    res.resource_type,
                    res.resource_name,
                    [c.name for c in changes],
                    change,
                    validate_only=request.validate_only,
                    check_shape=functools.partial(check_change_shape, changes),
                )
            responses.append(
                build(
                    mod,
                    "AlterConfigsResourceResponse",
                    error_code=code,
                    error_message=message,
                    resource_type=res.resource_type,
                    resource_name=res.resource_name,
                )
            )
        return build(
            mod,
            "IncrementalAlterConfigsResponse",
            throttle_time=datetime.timedelta(0),
            responses=tuple(responses),
        )

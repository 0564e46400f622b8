"""AlterConfigs (33) v0-2: replace a topic's whole override set.

Each TOPIC resource's configs become the topic's overrides (what is not listed goes
back to its default), every value checked with the topic config table (INVALID_CONFIG
naming the key); the BROKER resource named "" (the cluster default) replaces the
cluster's whole set of dynamic topic config defaults the same way; other BROKER and
BROKER_LOGGER resources are refused per resource (broker/handlers/config_resources.py).
`validate_only` checks and changes nothing.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.config_resources import alter_resource, duplicate_answer, duplicated
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.topic_config import check_unique_keys

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class AlterConfigsHandler(Handler):
    api_key, min_version, max_version = 33, 0, 2

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        twice = duplicated((r.resource_type, r.resource_name) for r in request.resources)
        responses = []
        for res in request.resources:
            names = [c.name for c in res.configs]
            # Null values stay in: the table refuses them with INVALID_CONFIG, as Kafka.
            given: dict[str, str | None] = {c.name: c.value for c in res.configs}

            def replace(
                _current: Mapping[str, str], given: dict[str, str | None] = given
            ) -> Mapping[str, str | None]:
                return given

            if (res.resource_type, res.resource_name) in twice:
                code, message = duplicate_answer(res.resource_type, res.resource_name)
            else:
                code, message = await alter_resource(
                    node,
                    res.resource_type,
                    res.resource_name,
                    names,
                    replace,
                    validate_only=request.validate_only,
                    check_shape=functools.partial(check_unique_keys, names),
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
            "AlterConfigsResponse",
            throttle_time=datetime.timedelta(0),
            responses=tuple(responses),
        )

"""CreateTopics (19) v2-7. Any replication factor is accepted: the object store replicates,
so RF > 1 is recorded as asked but every partition has one replica, this broker.

`validate_only` runs the same checks as a create (name, partition caps, config values
as Kafka checks them: storage/topic_config.py), counting what the topics before it in
the request would add, and creates nothing.
"""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import create_topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError
from tidelog.storage.topic_config import DEFAULT_TOPIC_CONFIGS

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class CreateTopicsHandler(Handler):
    api_key, min_version, max_version = 19, 2, 7

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        results = []
        planned = 0  # partitions a validate-only request would have created so far
        for t in request.topics:
            code, message, partitions, topic_id = ErrorCode.none, None, -1, uuid.UUID(int=0)
            configs: dict[str, str | None] = {c.name: c.value for c in t.configs}
            stored: dict[str, str] = {}
            count = t.num_partitions
            if count == -1:
                count = node.config.default_partitions
            if t.assignments:
                count = len(t.assignments)
            try:
                if not create_topic_allowed(node, t.name):
                    raise StoreError(ErrorCode.topic_authorization_failed, f"no CREATE of {t.name}")
                if t.replication_factor == 0 or t.replication_factor < -1:
                    raise StoreError(
                        ErrorCode.invalid_replication_factor,
                        f"invalid replication factor replication_factor={t.replication_factor}",
                    )
                if request.validate_only:
                    stored = node.check_new_topic(t.name, count, configs, planned=planned)
                    planned += count
                else:
                    state = await node.create_topic(t.name, count, configs)
                    topic_id, stored = uuid.UUID(state.topic_id), state.configs
                partitions = count
            except StoreError as exc:
                code, message = exc.code, str(exc)
            merged = {**DEFAULT_TOPIC_CONFIGS, **stored}
            results.append(
                build(
                    mod,
                    "CreatableTopicResult",
                    name=t.name,
                    topic_id=topic_id,
                    error_code=code,
                    error_message=message,
                    topic_config_error_code=ErrorCode.none,
                    num_partitions=partitions,
                    replication_factor=max(t.replication_factor, 1)
                    if code == ErrorCode.none
                    else -1,
                    configs=tuple(
                        build(
                            mod,
                            "CreatableTopicConfigs",
                            name=k,
                            value=v,
                            read_only=False,
                            config_source=1 if k in stored else 5,
                            is_sensitive=False,
                        )
                        for k, v in sorted(merged.items())
                    )
                    if code == ErrorCode.none and hasattr(mod, "CreatableTopicConfigs")
                    else (),
                )
            )
        return build(
            mod, "CreateTopicsResponse", throttle_time=datetime.timedelta(0), topics=tuple(results)
        )

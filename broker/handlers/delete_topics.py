"""DeleteTopics (20) v1-6, by name or (v6) by topic id."""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class DeleteTopicsHandler(Handler):
    api_key, min_version, max_version = 20, 1, 6

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        if header.api_version >= 6:
            wanted = [(t.name, t.topic_id) for t in request.topics]
        else:
            wanted = [(name, None) for name in request.topic_names]
        results = []
        for name, topic_id in wanted:
            if name is None and topic_id is not None:
                name = node.topic_name(topic_id)
            code, message = ErrorCode.none, None
            state = node.topic(name) if name else None
            try:
                if name is not None and not topic_allowed(node, Op.DELETE, name):
                    raise StoreError(ErrorCode.topic_authorization_failed, f"no DELETE on {name}")
                if state is None:
                    code = (
                        ErrorCode.unknown_topic_id
                        if name is None and topic_id is not None
                        else ErrorCode.unknown_topic_or_partition
                    )
                else:
                    await node.delete_topic(state.name)
            except StoreError as exc:
                code, message = exc.code, str(exc)
            results.append(
                build(
                    mod,
                    "DeletableTopicResult",
                    name=name,
                    topic_id=uuid.UUID(state.topic_id) if state else (topic_id or uuid.UUID(int=0)),
                    error_code=code,
                    error_message=message,
                )
            )
        return build(
            mod,
            "DeleteTopicsResponse",
            throttle_time=datetime.timedelta(0),
            responses=tuple(results),
        )

"""CreatePartitions (37) v0-3: grow a topic's partition count.

`validate_only` runs the same checks (the caps included, counting what the topics
before it in the request would add) and changes nothing.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, topic_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class CreatePartitionsHandler(Handler):
    api_key, min_version, max_version = 37, 0, 3

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        results = []
        planned = 0  # partitions a validate-only request would have added so far
        for t in request.topics:
            code, message = ErrorCode.none, None
            try:
                if not topic_allowed(node, Op.ALTER, t.name):
                    raise StoreError(ErrorCode.topic_authorization_failed, f"no ALTER on {t.name}")
                state = node.check_new_partitions(t.name, t.count, planned=planned)
                if request.validate_only:
                    planned += t.count - state.partitions
                else:
                    await node.create_partitions(t.name, t.count)
            except StoreError as exc:
                code, message = exc.code, str(exc)
            results.append(
                build(
                    mod,
                    "CreatePartitionsTopicResult",
                    name=t.name,
                    error_code=code,
                    error_message=message,
                )
            )
        return build(
            mod,
            "CreatePartitionsResponse",
            throttle_time=datetime.timedelta(0),
            results=tuple(results),
        )

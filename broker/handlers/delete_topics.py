"""DeleteTopics (20) v1-6, by name or (v6) by topic id."""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler, build, response_module
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.server import Broker


class DeleteTopicsHandler(Handler):
    api_key, min_version, max_version = 20, 1, 6

    async def handle(self, broker: Broker, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        if header.api_version >= 6:
            wanted = [(t.name, t.topic_id) for t in request.topics]
        else:
            wanted = [(name, None) for name in request.topic_names]
        results = []
        for name, topic_id in wanted:
            if name is None and topic_id is not None:
                name = next(
                    (n for n, s in broker.store.topics().items() if s.topic_id == str(topic_id)),
                    None,
                )
            code, message = ErrorCode.none, None
            state = broker.store.topic(name) if name else None
            try:
                if state is None:
                    code = (
                        ErrorCode.unknown_topic_id
                        if name is None and topic_id is not None
                        else ErrorCode.unknown_topic_or_partition
                    )
                else:
                    await broker.store.delete_topic(state.name)
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

"""CreatePartitions (37) v0-3: grow a topic's partition count."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from broker.handlers.base import Handler, build, response_module
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader
from storage.errors import StoreError

if TYPE_CHECKING:
    from broker.server import Broker


class CreatePartitionsHandler(Handler):
    api_key, min_version, max_version = 37, 0, 3

    async def handle(self, broker: Broker, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        results = []
        for t in request.topics:
            code, message = ErrorCode.none, None
            try:
                state = broker.store.topic(t.name)
                if state is None:
                    raise StoreError(
                        ErrorCode.unknown_topic_or_partition, f"no such topic topic={t.name}"
                    )
                if t.count <= state.partitions:
                    raise StoreError(
                        ErrorCode.invalid_partitions,
                        f"partition count can only grow topic={t.name} "
                        f"current={state.partitions} requested={t.count}",
                    )
                if not request.validate_only:
                    await broker.store.create_partitions(t.name, t.count)
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

"""FindCoordinator (10) v0-4, batched keys in v4: this broker coordinates every group.

Advertising FindCoordinator matters even before consumer groups do: librdkafka only
compresses with lz4 (and enables other features) when the broker offers it.
Transaction coordinators are refused (COORDINATOR_NOT_AVAILABLE): no transactions yet.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from broker.handlers.base import Handler, build, response_module
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader

if TYPE_CHECKING:
    from broker.server import Broker

GROUP, TRANSACTION = 0, 1


class FindCoordinatorHandler(Handler):
    api_key, min_version, max_version = 10, 0, 4

    async def handle(self, broker: Broker, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        key_type = getattr(request, "key_type", GROUP)
        adv = broker.config.advertised
        if key_type == GROUP:
            code, message, node, host, port = (
                ErrorCode.none,
                None,
                broker.node_id,
                adv.host,
                adv.port,
            )
        else:
            code, message = ErrorCode.coordinator_not_available, "transactions are not supported"
            node, host, port = -1, "", -1
        if header.api_version >= 4:
            return build(
                mod,
                "FindCoordinatorResponse",
                throttle_time=datetime.timedelta(0),
                coordinators=tuple(
                    build(
                        mod,
                        "Coordinator",
                        key=key,
                        node_id=node,
                        host=host,
                        port=port,
                        error_code=code,
                        error_message=message,
                    )
                    for key in request.coordinator_keys
                ),
            )
        return build(
            mod,
            "FindCoordinatorResponse",
            throttle_time=datetime.timedelta(0),
            error_code=code,
            error_message=message,
            node_id=node,
            host=host,
            port=port,
        )

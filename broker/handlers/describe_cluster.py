"""DescribeCluster (60) v0-1: this broker, the cluster id, and itself as controller."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from broker.handlers.base import Handler, build, response_module
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader

if TYPE_CHECKING:
    from broker.server import Broker

_ALL_OPERATIONS = -2147483648


class DescribeClusterHandler(Handler):
    api_key, min_version, max_version = 60, 0, 1

    async def handle(self, broker: Broker, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        adv = broker.config.advertised
        return build(
            mod,
            "DescribeClusterResponse",
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.none,
            error_message=None,
            endpoint_type=getattr(request, "endpoint_type", 1),
            cluster_id=broker.cluster_id,
            controller_id=broker.node_id,
            brokers=(
                build(
                    mod,
                    "DescribeClusterBroker",
                    broker_id=broker.node_id,
                    host=adv.host,
                    port=adv.port,
                    rack=None,
                ),
            ),
            cluster_authorized_operations=_ALL_OPERATIONS,
        )

"""DescribeCluster (60) v0-1: this broker, the cluster id, and itself as controller."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, Res, authorized_operations, cluster_allowed
from tidelog.broker.handlers.base import Handler, broker_address
from tidelog.broker.security.acl import CLUSTER_NAME
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class DescribeClusterHandler(Handler):
    api_key, min_version, max_version = 60, 0, 1
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        authorized = cluster_allowed(node, Op.DESCRIBE)
        return build(
            mod,
            "DescribeClusterResponse",
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.none if authorized else ErrorCode.cluster_authorization_failed,
            error_message=None,
            endpoint_type=getattr(request, "endpoint_type", 1),
            cluster_id=node.cluster_id,
            controller_id=node.controller_id(),
            brokers=tuple(
                build(
                    mod,
                    "DescribeClusterBroker",
                    broker_id=m.node,
                    host=a[0],
                    port=a[1],
                    rack=None,
                )
                for m in (node.live_brokers() if authorized else ())
                if (a := broker_address(m)) is not None
            ),
            cluster_authorized_operations=authorized_operations(
                node,
                Res.CLUSTER,
                CLUSTER_NAME,
                requested=authorized and request.include_cluster_authorized_operations,
            ),
        )

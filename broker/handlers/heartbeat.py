"""Heartbeat (12) v0-4: decode, hand a `Heartbeat` to the group coordinator, encode.

Answered at once: it refreshes the member's session, and REBALANCE_IN_PROGRESS tells
the member to rejoin.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.events import Heartbeat, HeartbeatResponse
from tidelog.broker.handlers.authz import Op, group_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class HeartbeatHandler(Handler):
    api_key, min_version, max_version = 12, 0, 4

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        if not group_allowed(node, Op.READ, request.group_id):
            return build(
                response_module(self.api_key, header.api_version),
                "HeartbeatResponse",
                throttle_time=datetime.timedelta(0),
                error_code=ErrorCode.group_authorization_failed,
            )
        answer = await node.group_call(
            request.group_id,
            lambda token: Heartbeat(
                token=token,
                member_id=request.member_id,
                generation_id=request.generation_id,
                group_instance_id=getattr(request, "group_instance_id", None),
            ),
        )
        assert isinstance(answer, HeartbeatResponse)
        return build(
            response_module(self.api_key, header.api_version),
            "HeartbeatResponse",
            throttle_time=datetime.timedelta(0),
            error_code=answer.error,
        )

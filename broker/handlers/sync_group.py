"""SyncGroup (14) v0-5: decode, hand a `Sync` to the group coordinator, encode its answer.

A follower's answer is deferred until the leader's SyncGroup brings the assignments.
protocol_type and protocol_name exist only from v5; before that they go in as None
(the coordinator then skips the check that they match the group's).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.events import Sync, SyncResponse
from tidelog.broker.handlers.authz import Op, group_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class SyncGroupHandler(Handler):
    api_key, min_version, max_version = 14, 0, 5

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        if not group_allowed(node, Op.READ, request.group_id):
            return build(
                response_module(self.api_key, header.api_version),
                "SyncGroupResponse",
                throttle_time=datetime.timedelta(0),
                error_code=ErrorCode.group_authorization_failed,
                protocol_type=None,
                protocol_name=None,
                assignment=b"",
            )
        answer = await node.group_call(
            request.group_id,
            lambda token: Sync(
                token=token,
                member_id=request.member_id,
                generation_id=request.generation_id,
                group_instance_id=getattr(request, "group_instance_id", None),
                protocol_type=getattr(request, "protocol_type", None),
                protocol_name=getattr(request, "protocol_name", None),
                assignments={a.member_id: a.assignment for a in request.assignments},
            ),
        )
        assert isinstance(answer, SyncResponse)
        return build(
            response_module(self.api_key, header.api_version),
            "SyncGroupResponse",
            throttle_time=datetime.timedelta(0),
            error_code=answer.error,
            protocol_type=answer.protocol_type,
            protocol_name=answer.protocol_name,
            assignment=answer.assignment,
        )

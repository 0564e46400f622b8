"""LeaveGroup (13) v0-4: decode, hand a `Leave` to the group coordinator, encode.

v0-2 name one member and have only a top-level error, which is that member's error.
v3+ (KIP-345) batch members, each with its own error; the top-level error is the
group's (for example COORDINATOR_NOT_AVAILABLE).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.events import Leave, LeaveResponse
from tidelog.broker.handlers.authz import Op, group_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class LeaveGroupHandler(Handler):
    api_key, min_version, max_version = 13, 0, 4

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        version = header.api_version
        if version >= 3:
            members = tuple((m.member_id, m.group_instance_id) for m in request.members)
        else:
            members = ((request.member_id, None),)
        if not group_allowed(node, Op.READ, request.group_id):
            return build(
                response_module(self.api_key, version),
                "LeaveGroupResponse",
                throttle_time=datetime.timedelta(0),
                error_code=ErrorCode.group_authorization_failed,
                members=(),
            )
        answer = await node.group_call(
            request.group_id, lambda token: Leave(token=token, members=members)
        )
        assert isinstance(answer, LeaveResponse)
        mod = response_module(self.api_key, version)
        if version < 3:
            only = answer.members[0].error if answer.members else answer.error
            error = answer.error if answer.error else only
            return build(
                mod, "LeaveGroupResponse", throttle_time=datetime.timedelta(0), error_code=error
            )
        return build(
            mod,
            "LeaveGroupResponse",
            throttle_time=datetime.timedelta(0),
            error_code=answer.error,
            members=tuple(
                build(
                    mod,
                    "MemberResponse",
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    error_code=m.error,
                )
                for m in answer.members
            ),
        )

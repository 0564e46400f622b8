"""JoinGroup (11) v0-7: decode, hand a `Join` to the group coordinator, encode its answer.

The answer is deferred by the coordinator until the join phase completes (every member
has rejoined, or the rebalance timeout fires). Version rules kept here: v4+ require a
known member id (KIP-394, MEMBER_ID_REQUIRED first); v0 has no rebalance timeout, so
the session timeout stands in; protocol_name is non-nullable before v7 ("" then).
The client host is "" because handlers are not told the connection's peer.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.events import Join, JoinResponse
from tidelog.broker.handlers.authz import Op, group_allowed
from tidelog.broker.handlers.base import Handler, client_host
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

_MS = datetime.timedelta(milliseconds=1)


class JoinGroupHandler(Handler):
    api_key, min_version, max_version = 11, 0, 7

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        version = header.api_version
        session_ms = request.session_timeout // _MS
        rebalance = getattr(request, "rebalance_timeout", None)
        if not group_allowed(node, Op.READ, request.group_id):
            return build(
                response_module(self.api_key, version),
                "JoinGroupResponse",
                throttle_time=datetime.timedelta(0),
                error_code=ErrorCode.group_authorization_failed,
                generation_id=-1,
                protocol_type=None,
                protocol_name=None if version >= 7 else "",
                leader="",
                member_id="",
                members=(),
            )
        answer = await node.group_call(
            request.group_id,
            lambda token: Join(
                token=token,
                member_id=request.member_id,
                group_instance_id=getattr(request, "group_instance_id", None),
                client_id=header.client_id or "",
                client_host=client_host.get(),
                session_timeout_ms=session_ms,
                rebalance_timeout_ms=session_ms if rebalance is None else rebalance // _MS,
                protocol_type=request.protocol_type,
                protocols=tuple((p.name, p.metadata) for p in request.protocols),
                require_known_member_id=version >= 4,
                reason=getattr(request, "reason", None),
            ),
        )
        assert isinstance(answer, JoinResponse)
        mod = response_module(self.api_key, version)
        members = tuple(
            build(
                mod,
                "JoinGroupResponseMember",
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                metadata=m.metadata,
            )
            for m in answer.members
        )
        protocol_name = answer.protocol_name
        return build(
            mod,
            "JoinGroupResponse",
            throttle_time=datetime.timedelta(0),
            error_code=answer.error,
            generation_id=answer.generation_id,
            protocol_type=answer.protocol_type,
            protocol_name=protocol_name if protocol_name is not None or version >= 7 else "",
            leader=answer.leader_id,
            member_id=answer.member_id,
            members=members,
        )

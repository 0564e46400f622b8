"""DescribeGroups (15) v0-5: the coordinator's view of each group (group_queries.describe).

A group with committed offsets but no live state describes as "Empty" with no members;
a group with neither describes as "Dead" with error 0, as Kafka does.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.model import EMPTY
from tidelog.broker.groups.queries import GroupDescription, describe
from tidelog.broker.handlers.authz import (
    OPERATIONS_OMITTED,
    Op,
    Res,
    authorized_operations,
    group_allowed,
)
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from types import ModuleType

    from tidelog.broker.handlers.context import Node


class DescribeGroupsHandler(Handler):
    api_key, min_version, max_version = 15, 0, 5
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        # v3+: the principal's operations on each group it is answered, if asked.
        with_operations = getattr(request, "include_authorized_operations", False)
        groups = tuple(
            _described(
                mod,
                _description(node, gid),
                authorized_operations(node, Res.GROUP, gid, requested=with_operations),
            )
            if node.coordinates(gid) and group_allowed(node, Op.DESCRIBE, gid)
            else build(
                mod,
                "DescribedGroup",
                error_code=ErrorCode.not_coordinator
                if group_allowed(node, Op.DESCRIBE, gid)
                else ErrorCode.group_authorization_failed,
                group_id=gid,
                group_state="",
                protocol_type="",
                protocol_data="",
                members=(),
                authorized_operations=OPERATIONS_OMITTED,
            )
            for gid in request.groups
        )
        return build(
            mod, "DescribeGroupsResponse", throttle_time=datetime.timedelta(0), groups=groups
        )


def _description(node: Node, group_id: str) -> GroupDescription:
    group = node.live_group(group_id)
    if group is None and node.committed_offsets(group_id):
        return GroupDescription(group_id, EMPTY.value, "", "", ())
    return describe(group_id, group)


def _described(mod: ModuleType, d: GroupDescription, operations: int) -> Any:
    members = tuple(
        build(
            mod,
            "DescribedGroupMember",
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            member_metadata=m.metadata,
            member_assignment=m.assignment,
        )
        for m in d.members
    )
    return build(
        mod,
        "DescribedGroup",
        error_code=ErrorCode.none,
        group_id=d.group_id,
        group_state=d.state,
        protocol_type=d.protocol_type,
        protocol_data=d.protocol_data,
        members=members,
        authorized_operations=operations,
    )

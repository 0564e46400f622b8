"""DeleteGroups (42) v0-2: an Empty group loses its live state and its committed offsets.

A group with members is NON_EMPTY_GROUP; a group with neither live state nor offsets
is GROUP_ID_NOT_FOUND. The live group is deleted first (the coordinator's `Delete`
event, which refuses a non-empty group), then the offsets in the bucket.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.events import Delete, DeleteResponse
from tidelog.broker.handlers.authz import Op, group_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class DeleteGroupsHandler(Handler):
    api_key, min_version, max_version = 42, 0, 2

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        results = []
        for group_id in request.groups_names:
            code = await delete_group(node, group_id)
            results.append(build(mod, "DeletableGroupResult", group_id=group_id, error_code=code))
        return build(
            mod,
            "DeleteGroupsResponse",
            throttle_time=datetime.timedelta(0),
            results=tuple(results),
        )


async def delete_group(node: Node, group_id: str) -> ErrorCode:
    if not group_allowed(node, Op.DELETE, group_id):
        return ErrorCode.group_authorization_failed
    if not node.coordinates(group_id):
        return ErrorCode.not_coordinator
    live = node.live_group(group_id) is not None
    has_offsets = bool(node.committed_offsets(group_id))
    if not live and not has_offsets:
        return ErrorCode.group_id_not_found
    if live:
        answer = await node.group_call(group_id, lambda token: Delete(token=token))
        assert isinstance(answer, DeleteResponse)
        if answer.error is not ErrorCode.none and not (
            answer.error is ErrorCode.group_id_not_found and has_offsets
        ):
            return answer.error
    if has_offsets:
        try:
            await node.delete_group_offsets(group_id)
        except StoreError as exc:
            return exc.code
    return ErrorCode.none

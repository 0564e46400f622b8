"""ListGroups (16) v0-5: live groups, plus groups that only have committed offsets.

An offset-only group (simple commits, or any group after a broker restart: group
metadata is not persisted) lists as "Empty" with protocol type "", as Kafka lists the
groups it loaded from offsets alone. v4 filters by state, case-insensitively. v5
(KIP-848) gives each group's type and filters by type, case-insensitively: every
tidelog group is "classic" (there is no ConsumerGroupHeartbeat), so a filter that does
not name "classic" lists none.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.groups.model import EMPTY
from tidelog.broker.groups.queries import GroupListing, listing
from tidelog.broker.handlers.authz import Op, cluster_allowed, group_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


# Kafka's Group.GroupType name of a group run by JoinGroup/SyncGroup (KIP-848).
CLASSIC = "classic"


def known_groups(node: Node) -> list[GroupListing]:
    live = {gid: listing(g) for gid in node.live_group_ids() if (g := node.live_group(gid))}
    for gid in node.groups_with_offsets():
        live.setdefault(gid, GroupListing(gid, "", EMPTY.value))
    return [live[gid] for gid in sorted(live)]


class ListGroupsHandler(Handler):
    api_key, min_version, max_version = 16, 0, 5
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        states = {s.lower() for s in getattr(request, "states_filter", ())}
        # v5: only classic groups exist here; a types filter without "classic" lists none.
        types = {t.lower() for t in getattr(request, "types_filter", ())}
        candidates = known_groups(node) if not types or CLASSIC in types else []
        # DESCRIBE on the cluster lists every group; else only those it may describe.
        every = cluster_allowed(node, Op.DESCRIBE)
        groups = tuple(
            build(
                mod,
                "ListedGroup",
                group_id=g.group_id,
                protocol_type=g.protocol_type,
                group_state=g.state,
                group_type=CLASSIC,
            )
            for g in candidates
            if (not states or g.state.lower() in states)
            and (every or group_allowed(node, Op.DESCRIBE, g.group_id))
        )
        return build(
            mod,
            "ListGroupsResponse",
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.none,
            groups=groups,
        )

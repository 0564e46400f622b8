"""SyncGroup: a member collecting its assignment, and the leader handing them out.

Owns: the sync prechecks (member of this generation, the v5 protocol type and name, no
sync while PreparingRebalance), parking a follower's sync until the leader's, and the
leader's sync that stores every assignment and makes the group Stable.

Guarantees: pure (no clock, no I/O); a sync token is answered now or parked on its
member and answered when the leader syncs or the rebalance ends; a parked sync that a
newer one replaces is answered REBALANCE_IN_PROGRESS.
"""

from __future__ import annotations

from tidelog.broker.groups.events import Sync, SyncResponse
from tidelog.broker.groups.model import PREPARING, STABLE, Group, validate_generation_member
from tidelog.broker.groups.rebalance import release_syncs, sync_answer
from tidelog.broker.groups.step import Step
from tidelog.protocol.errors import ErrorCode


def on_sync(s: Step, e: Sync) -> None:
    g = s.group
    error = _sync_precheck(g, e)
    if error is not ErrorCode.none:
        s.out.append(SyncResponse(e.token, error))
        return
    member = g.members[e.member_id]
    _mark_synced(g, member.member_id)
    if g.state is STABLE:
        member.last_heartbeat_ms = s.now
        s.out.append(sync_answer(g, e.token, member))
        return
    if member.sync_token is not None:
        s.out.append(SyncResponse(member.sync_token, ErrorCode.rebalance_in_progress))
    member.sync_token = e.token
    if g.leader_id == member.member_id:
        for m in g.members.values():
            m.assignment = e.assignments.get(m.member_id, b"")
        g.state = STABLE
        release_syncs(s, ErrorCode.none)


def _sync_precheck(g: Group, e: Sync) -> ErrorCode:
    error = validate_generation_member(g, e.member_id, e.group_instance_id, e.generation_id)
    if error is not ErrorCode.none:
        return error
    if _differs(e.protocol_type, g.protocol_type) or _differs(e.protocol_name, g.protocol_name):
        return ErrorCode.inconsistent_group_protocol
    if g.state is PREPARING:
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def _differs(requested: str | None, actual: str | None) -> bool:
    return requested is not None and actual is not None and requested != actual


def _mark_synced(g: Group, member_id: str) -> None:
    g.pending_sync.discard(member_id)
    if not g.pending_sync:
        g.sync_deadline_ms = None

"""Heartbeat, LeaveGroup, DeleteGroups and Unload: members staying, going, the group ending.

Owns: refreshing a member's session on Heartbeat (and its error: REBALANCE_IN_PROGRESS
only while PreparingRebalance), batched LeaveGroup with one error per member (admin
removal of a static member by instance id, forgetting a handed-out id), DeleteGroups
of an Empty group, and `go_dead` (Delete and Unload), which answers every parked request.

Guarantees: pure (no clock, no I/O); every request here is answered in this call; a
Dead group keeps no pending members, pending syncs or join/sync deadlines, so no timer
of it fires again.
"""

from __future__ import annotations

from tidelog.broker.groups.events import (
    UNKNOWN_MEMBER_ID,
    Delete,
    DeleteResponse,
    Heartbeat,
    HeartbeatResponse,
    Leave,
    LeaveResponse,
    LeftMember,
)
from tidelog.broker.groups.model import (
    DEAD,
    EMPTY,
    PREPARING,
    Group,
    validate_generation_member,
    validate_member,
)
from tidelog.broker.groups.rebalance import (
    answer_parked,
    maybe_complete_join,
    remove_member_and_update_group,
)
from tidelog.broker.groups.step import Step
from tidelog.protocol.errors import ErrorCode


def on_heartbeat(s: Step, e: Heartbeat) -> None:
    g = s.group
    error = _heartbeat_error(g, e)
    if error in (ErrorCode.none, ErrorCode.rebalance_in_progress):
        g.members[e.member_id].last_heartbeat_ms = s.now
    s.out.append(HeartbeatResponse(e.token, error))


def _heartbeat_error(g: Group, e: Heartbeat) -> ErrorCode:
    error = validate_generation_member(g, e.member_id, e.group_instance_id, e.generation_id)
    if error is not ErrorCode.none:
        return error
    if g.state is PREPARING:
        return ErrorCode.rebalance_in_progress
    # CompletingRebalance included: members heartbeat while waiting for the leader's sync.
    return ErrorCode.none


def on_leave(s: Step, e: Leave) -> None:
    if s.group.state is DEAD:
        s.out.append(LeaveResponse(e.token, ErrorCode.coordinator_not_available))
        return
    results = tuple(
        LeftMember(member_id, instance_id, _leave_one(s, member_id, instance_id))
        for member_id, instance_id in e.members
    )
    s.out.append(LeaveResponse(e.token, ErrorCode.none, results))


def _leave_one(s: Step, member_id: str, instance_id: str | None) -> ErrorCode:
    g = s.group
    if member_id == UNKNOWN_MEMBER_ID:
        current = g.static_members.get(instance_id) if instance_id is not None else None
        if current is None:
            return ErrorCode.unknown_member_id
        remove_member_and_update_group(s, current)
        return ErrorCode.none
    if member_id in g.pending_members:
        del g.pending_members[member_id]
        maybe_complete_join(s)
        return ErrorCode.none
    error = validate_member(g, member_id, instance_id)
    if error is ErrorCode.none:
        remove_member_and_update_group(s, member_id)
    return error


def on_delete(s: Step, e: Delete) -> None:
    state = s.group.state
    if state is DEAD:
        error = ErrorCode.group_id_not_found
    elif state is EMPTY:
        go_dead(s, ErrorCode.coordinator_not_available)
        error = ErrorCode.none
    else:
        error = ErrorCode.non_empty_group
    s.out.append(DeleteResponse(e.token, error))


def go_dead(s: Step, error: ErrorCode) -> None:
    for member in s.group.members.values():
        answer_parked(s, member, error)
    s.group.state = DEAD
    s.group.pending_members.clear()
    s.group.pending_sync.clear()
    s.group.join_deadline_ms = s.group.sync_deadline_ms = None

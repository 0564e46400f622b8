"""JoinGroup: what a join does to a group, for a new, pending, known or static member.

Owns: the join prechecks (session timeout range, Dead group, `max_group_size`, protocol
type and a common protocol), KIP-394 handed-out member ids, KIP-345 static replacement
(the old id fenced, the assignment kept in Stable when the vote would not change), the
answers to a join that needs no rebalance, and superseding a parked join.

Guarantees: pure (no clock, no I/O); a join's token is answered now or parked on its
member (and then answered by the rebalance core, `broker/groups/rebalance.py`); a
parked join that a newer one replaces is answered REBALANCE_IN_PROGRESS.
"""

from __future__ import annotations

from dataclasses import replace

from tidelog.broker.groups.events import UNKNOWN_MEMBER_ID, Join, JoinResponse
from tidelog.broker.groups.model import (
    COMPLETING,
    DEAD,
    EMPTY,
    PREPARING,
    STABLE,
    Group,
    GroupConfig,
    Member,
    validate_member,
)
from tidelog.broker.groups.protocol_vote import common_protocols, select_protocol
from tidelog.broker.groups.rebalance import (
    answer_parked,
    join_answer,
    maybe_prepare_rebalance_or_complete_join,
    prepare_rebalance,
    remove_member_and_update_group,
)
from tidelog.broker.groups.step import Step
from tidelog.protocol.errors import ErrorCode


def on_join(s: Step, e: Join) -> None:
    g = s.group
    error = _join_precheck(s, e)
    if error is not ErrorCode.none:
        s.out.append(JoinResponse(e.token, error, member_id=e.member_id))
    elif not _accepts_joining_member(g, e.member_id, s.config):
        if e.member_id in g.members:
            remove_member_and_update_group(s, e.member_id)
        s.out.append(JoinResponse(e.token, ErrorCode.group_max_size_reached))
    elif not _supports_protocols(g, e.protocol_type, [name for name, _ in e.protocols]):
        s.out.append(JoinResponse(e.token, ErrorCode.inconsistent_group_protocol, e.member_id))
    elif e.member_id == UNKNOWN_MEMBER_ID:
        _join_new_member(s, e)
    else:
        _join_existing_member(s, e)


def _join_precheck(s: Step, e: Join) -> ErrorCode:
    config = s.config
    if not config.min_session_timeout_ms <= e.session_timeout_ms <= config.max_session_timeout_ms:
        return ErrorCode.invalid_session_timeout
    if s.group.state is DEAD:
        return ErrorCode.coordinator_not_available
    return ErrorCode.none


def _accepts_joining_member(g: Group, member_id: str, config: GroupConfig) -> bool:
    limit = config.max_group_size
    if limit is None or g.state is EMPTY:
        return True
    member = g.members.get(member_id)
    if g.state is PREPARING:
        # Counting parked joins (not members) lets a shrunk limit shed the last rejoiners.
        awaiting = sum(m.awaiting_join for m in g.members.values())
        return (member is not None and member.awaiting_join) or awaiting < limit
    return member is not None or len(g.members) < limit


def _supports_protocols(g: Group, protocol_type: str, names: list[str]) -> bool:
    if not protocol_type or not names:
        return False
    if not g.members:
        return True
    common = common_protocols(g.protocol_preferences())
    return protocol_type == g.protocol_type and any(name in common for name in names)


def _join_new_member(s: Step, e: Join) -> None:
    g = s.group
    new_id = s.config.new_member_id(e.group_instance_id or e.client_id)
    if e.group_instance_id is not None:
        old_id = g.static_members.get(e.group_instance_id)
        if old_id is not None:
            _replace_static_member(s, e, e.group_instance_id, old_id, new_id)
        else:
            _add_member_and_rebalance(s, e, new_id)
    elif e.require_known_member_id:
        g.pending_members[new_id] = s.now + e.session_timeout_ms
        s.out.append(JoinResponse(e.token, ErrorCode.member_id_required, member_id=new_id))
    else:
        _add_member_and_rebalance(s, e, new_id)


def _join_existing_member(s: Step, e: Join) -> None:
    g = s.group
    if e.member_id in g.pending_members and e.group_instance_id is None:
        _add_member_and_rebalance(s, e, e.member_id)
        return
    error = validate_member(g, e.member_id, e.group_instance_id)
    if error is not ErrorCode.none:
        s.out.append(JoinResponse(e.token, error, e.member_id))
        return
    member = g.members[e.member_id]
    unchanged = member.protocols == e.protocols
    if g.state is COMPLETING and unchanged:
        # It probably lost the join response: answer again for the current generation.
        s.out.append(join_answer(g, e.token, member.member_id))
    elif g.state is STABLE and unchanged and g.leader_id != member.member_id:
        s.out.append(join_answer(g, e.token, member.member_id, with_members=False))
    else:
        # Changed metadata, or the leader asking for a rebalance (e.g. topic metadata changed).
        _update_member(s, member, e)
        maybe_prepare_rebalance_or_complete_join(s)


def _add_member_and_rebalance(s: Step, e: Join, member_id: str) -> None:
    g = s.group
    member = Member(
        member_id,
        e.group_instance_id,
        e.client_id,
        e.client_host,
        e.session_timeout_ms,
        e.rebalance_timeout_ms,
        e.protocol_type,
        e.protocols,
        last_heartbeat_ms=s.now,
        is_new=True,
        join_token=e.token,
    )
    if g.state is PREPARING and g.initial_rebalance:
        g.new_member_added = True
    if not g.members:
        g.protocol_type = member.protocol_type
    if g.leader_id is None:
        g.leader_id = member_id
    g.members[member_id] = member
    if member.group_instance_id is not None:
        g.static_members[member.group_instance_id] = member_id
    g.pending_members.pop(member_id, None)
    maybe_prepare_rebalance_or_complete_join(s)


def _replace_static_member(s: Step, e: Join, instance_id: str, old_id: str, new_id: str) -> None:
    """A static member restarted (new member id, same instance id): fence the old id."""
    g = s.group
    previous_leader = g.leader_id
    old = g.members.pop(old_id)
    answer_parked(s, old, ErrorCode.fenced_instance_id)
    member = replace(old, member_id=new_id, last_heartbeat_ms=s.now, is_new=False)
    g.members[new_id] = member
    if g.leader_id == old_id:
        g.leader_id = new_id
    g.static_members[instance_id] = new_id
    if old_id in g.pending_sync:
        g.pending_sync.discard(old_id)
        g.pending_sync.add(new_id)
    _update_member(s, member, e)
    if g.state is STABLE and select_protocol(g.protocol_preferences()) == g.protocol_name:
        # Kafka's restart without rebalance: the member keeps its assignment. The old
        # leader id goes back so that a restarted leader does not compute an assignment
        # a Stable group would never distribute.
        member.join_token = None
        answer = join_answer(g, e.token, new_id, with_members=False)
        s.out.append(replace(answer, leader_id=previous_leader or ""))
    elif g.state is COMPLETING:
        # The leader may already be assigning to the old id: start over.
        prepare_rebalance(s)
    else:
        maybe_prepare_rebalance_or_complete_join(s)


def _update_member(s: Step, member: Member, e: Join) -> None:
    member.protocols = e.protocols
    member.rebalance_timeout_ms = e.rebalance_timeout_ms
    member.session_timeout_ms = e.session_timeout_ms
    if member.join_token is not None:
        superseded = JoinResponse(member.join_token, ErrorCode.rebalance_in_progress)
        s.out.append(replace(superseded, member_id=member.member_id))
    member.join_token = e.token

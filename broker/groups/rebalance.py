"""The rebalance core every group transition ends in: start a rebalance, complete a join.

Owns: moving a group between PreparingRebalance, CompletingRebalance, Stable and Empty
(`prepare_rebalance`, `complete_join` and the `maybe_` variants that decide between
them), bumping the generation and voting the protocol, electing the leader, removing a
member (`drop_member`, `remove_member_and_update_group`), and the answers a rebalance
releases (`join_answer`, `sync_answer`, `release_syncs`, `answer_parked`).

Guarantees: pure (no clock, no I/O); `generation_id` only grows, by one per completed
join phase; a parked Join or Sync token is answered exactly once, and the member's
token cleared when it is; `leader_id` stays a member, or None when there are none.
"""

from __future__ import annotations

from tidelog.broker.groups.events import JoinedMember, JoinResponse, SyncResponse
from tidelog.broker.groups.model import COMPLETING, EMPTY, PREPARING, STABLE, Group, Member
from tidelog.broker.groups.protocol_vote import select_protocol
from tidelog.broker.groups.step import Step
from tidelog.protocol.errors import ErrorCode


def maybe_prepare_rebalance_or_complete_join(s: Step) -> None:
    if s.group.state in (EMPTY, STABLE, COMPLETING):
        prepare_rebalance(s)
    else:
        maybe_complete_join(s)


def prepare_rebalance(s: Step) -> None:
    g = s.group
    if g.state is COMPLETING:
        release_syncs(s, ErrorCode.rebalance_in_progress)
    g.pending_sync.clear()
    g.sync_deadline_ms = None
    g.initial_rebalance = g.state is EMPTY
    g.state = PREPARING
    if g.initial_rebalance:
        # A new group waits for more members; each arrival extends the wait, capped by
        # the rebalance timeout (Kafka's group.initial.rebalance.delay.ms).
        delay = s.config.initial_rebalance_delay_ms
        g.new_member_added = False
        g.initial_delay_ms = delay
        g.initial_remaining_ms = max(g.rebalance_timeout_ms() - delay, 0)
        g.join_deadline_ms = s.now + delay
    elif g.has_all_members_joined():
        complete_join(s)
    else:
        g.join_deadline_ms = s.now + g.rebalance_timeout_ms()


def maybe_complete_join(s: Step) -> None:
    g = s.group
    if g.state is PREPARING and not g.initial_rebalance and g.has_all_members_joined():
        complete_join(s)


def complete_join(s: Step) -> None:
    g = s.group
    g.join_deadline_ms = None
    g.initial_rebalance = g.new_member_added = False
    for member in list(g.members.values()):
        if not member.awaiting_join and member.group_instance_id is None:
            drop_member(s, member.member_id)
    if not _elect_joined_leader(g) and g.members:
        # Only static members that have not rejoined are left: wait for their sessions.
        g.join_deadline_ms = s.now + max(g.rebalance_timeout_ms(), 1)
        return
    g.generation_id += 1
    g.pending_sync.clear()
    if not g.members:
        g.protocol_name = None
        g.state = EMPTY
        return
    g.protocol_name = select_protocol(g.protocol_preferences())
    g.state = COMPLETING
    for member in g.members.values():
        if member.join_token is not None:
            s.out.append(join_answer(g, member.join_token, member.member_id))
            member.join_token = None
        member.last_heartbeat_ms = s.now
        member.is_new = False
        g.pending_sync.add(member.member_id)
    g.sync_deadline_ms = s.now + g.rebalance_timeout_ms()


def _elect_joined_leader(g: Group) -> bool:
    """Keep the leader if it rejoined, else promote a member that did; False if none did."""
    if g.leader_id is None:
        return False
    if g.members[g.leader_id].awaiting_join:
        return True
    rejoined = next((m.member_id for m in g.members.values() if m.awaiting_join), None)
    if rejoined is not None:
        g.leader_id = rejoined
    return rejoined is not None


def remove_member_and_update_group(s: Step, member_id: str) -> None:
    drop_member(s, member_id)
    if s.group.state in (STABLE, COMPLETING):
        prepare_rebalance(s)
    else:
        maybe_complete_join(s)


def drop_member(s: Step, member_id: str) -> None:
    g = s.group
    member = g.members.pop(member_id)
    answer_parked(s, member, ErrorCode.unknown_member_id)
    if member.group_instance_id is not None:
        g.static_members.pop(member.group_instance_id, None)
    g.pending_sync.discard(member_id)
    if g.leader_id == member_id:
        g.leader_id = next(iter(g.members), None)


def answer_parked(s: Step, member: Member, error: ErrorCode) -> None:
    if member.join_token is not None:
        s.out.append(JoinResponse(member.join_token, error, member_id=member.member_id))
        member.join_token = None
    if member.sync_token is not None:
        s.out.append(SyncResponse(member.sync_token, error))
        member.sync_token = None


def join_answer(g: Group, token: int, member_id: str, *, with_members: bool = True) -> JoinResponse:
    is_leader = with_members and g.leader_id == member_id
    return JoinResponse(
        token,
        ErrorCode.none,
        member_id=member_id,
        generation_id=g.generation_id,
        protocol_type=g.protocol_type,
        protocol_name=g.protocol_name,
        leader_id=g.leader_id or "",
        members=_joined_members(g) if is_leader else (),
    )


def _joined_members(g: Group) -> tuple[JoinedMember, ...]:
    protocol = g.protocol_name or ""
    return tuple(
        JoinedMember(m.member_id, m.group_instance_id, m.metadata(protocol))
        for m in g.members.values()
    )


def sync_answer(g: Group, token: int, member: Member) -> SyncResponse:
    return SyncResponse(token, ErrorCode.none, g.protocol_type, g.protocol_name, member.assignment)


def release_syncs(s: Step, error: ErrorCode) -> None:
    """Answer every parked sync: with its assignment, or with `error` and none."""
    for member in s.group.members.values():
        if member.sync_token is not None:
            answer = sync_answer(s.group, member.sync_token, member)
            s.out.append(answer if error is ErrorCode.none else SyncResponse(answer.token, error))
            member.sync_token = None
            member.last_heartbeat_ms = s.now

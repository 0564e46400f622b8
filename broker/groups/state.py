"""One classic consumer group as a pure state machine: `handle(group, event, now_ms, config)`.

Owns: membership, generations, the rebalance protocol (Empty -> PreparingRebalance ->
CompletingRebalance -> Stable, and Dead), member ids (KIP-394), static membership
(KIP-345), session / rebalance / sync / initial-delay timers, and Kafka's error for every
JoinGroup, SyncGroup, Heartbeat and LeaveGroup. It follows Kafka's classic
GroupCoordinator; the broker relays protocols and assignments and never assigns.

`handle` mutates the `Group` in place (one owner: the coordinator task for that group)
and returns effects: responses keyed by the caller's request token, then one `Wakeup`.
Events and effects are in `broker/groups/events.py`, the data in `broker/groups/model.py`, the
protocol vote in `broker/groups/protocol_vote.py`, read-only checks (OffsetCommit,
DescribeGroups, ListGroups) in `broker/groups/queries.py`. docs/group-coordinator.md says why.

Guarantees:
* No I/O, no clock, no logging: time is `now_ms` (must not go backwards) and new member
  ids come from `config.new_member_id`.
* Every Join and Sync token is answered exactly once, now or in a later call's effects.
* Timers fire in deadline order, each at its own deadline, before and after the event:
  so a call's results do not depend on whether the caller sent `Tick`s in between;
  ticks only make deferred answers come out on time. After a call no deadline <= now_ms
  is left, and the last effect is `Wakeup(next_deadline)`.
* `generation_id` never decreases; `leader_id` is a member, or None when there are none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from tidelog.broker.groups.events import (
    UNKNOWN_MEMBER_ID,
    Delete,
    DeleteResponse,
    Effect,
    Event,
    Heartbeat,
    HeartbeatResponse,
    Join,
    JoinedMember,
    JoinResponse,
    Leave,
    LeaveResponse,
    LeftMember,
    Sync,
    SyncResponse,
    Tick,
    Unload,
    Wakeup,
)
from tidelog.broker.groups.model import (
    COMPLETING,
    DEAD,
    DEFAULT_CONFIG,
    EMPTY,
    PREPARING,
    STABLE,
    Group,
    GroupConfig,
    GroupState,
    Member,
    random_member_id,
    validate_member,
)
from tidelog.broker.groups.protocol_vote import common_protocols, select_protocol
from tidelog.protocol.errors import ErrorCode

__all__ = [
    "Group",
    "GroupConfig",
    "GroupState",
    "Member",
    "handle",
    "next_deadline",
    "random_member_id",
    "validate_member",
]


@dataclass(slots=True)
class _Step:
    group: Group
    now: int
    config: GroupConfig
    out: list[Effect]


def handle(
    group: Group, event: Event, now_ms: int, config: GroupConfig = DEFAULT_CONFIG
) -> list[Effect]:
    """Apply one event at `now_ms`; return the responses it releases, then a Wakeup."""
    step = _Step(group, now_ms, config, [])
    _fire_due_timers(step)
    match event:
        case Join():
            _on_join(step, event)
        case Sync():
            _on_sync(step, event)
        case Heartbeat():
            _on_heartbeat(step, event)
        case Leave():
            _on_leave(step, event)
        case Delete():
            _on_delete(step, event)
        case Unload():
            _go_dead(step, ErrorCode.not_coordinator)
        case Tick():
            pass
    _fire_due_timers(step)
    step.out.append(Wakeup(next_deadline(group, config)))
    return step.out


def next_deadline(group: Group, config: GroupConfig) -> int | None:
    return min((deadline for deadline, _, _ in _timers(group, config)), default=None)


# -- JoinGroup --------------------------------------------------------------------------


def _on_join(s: _Step, e: Join) -> None:
    g = s.group
    error = _join_precheck(s, e)
    if error is not ErrorCode.none:
        s.out.append(JoinResponse(e.token, error, member_id=e.member_id))
    elif not _accepts_joining_member(g, e.member_id, s.config):
        if e.member_id in g.members:
            _remove_member_and_update_group(s, e.member_id)
        s.out.append(JoinResponse(e.token, ErrorCode.group_max_size_reached))
    elif not _supports_protocols(g, e.protocol_type, [name for name, _ in e.protocols]):
        s.out.append(JoinResponse(e.token, ErrorCode.inconsistent_group_protocol, e.member_id))
    elif e.member_id == UNKNOWN_MEMBER_ID:
        _join_new_member(s, e)
    else:
        _join_existing_member(s, e)


def _join_precheck(s: _Step, e: Join) -> ErrorCode:
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


def _join_new_member(s: _Step, e: Join) -> None:
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


def _join_existing_member(s: _Step, e: Join) -> None:
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
        s.out.append(_join_answer(g, e.token, member.member_id))
    elif g.state is STABLE and unchanged and g.leader_id != member.member_id:
        s.out.append(_join_answer(g, e.token, member.member_id, with_members=False))
    else:
        # Changed metadata, or the leader asking for a rebalance (e.g. topic metadata changed).
        _update_member(s, member, e)
        _maybe_prepare_rebalance_or_complete_join(s)


def _add_member_and_rebalance(s: _Step, e: Join, member_id: str) -> None:
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
    _maybe_prepare_rebalance_or_complete_join(s)


def _replace_static_member(s: _Step, e: Join, instance_id: str, old_id: str, new_id: str) -> None:
    """A static member restarted (new member id, same instance id): fence the old id."""
    g = s.group
    previous_leader = g.leader_id
    old = g.members.pop(old_id)
    _answer_parked(s, old, ErrorCode.fenced_instance_id)
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
        answer = _join_answer(g, e.token, new_id, with_members=False)
        s.out.append(replace(answer, leader_id=previous_leader or ""))
    elif g.state is COMPLETING:
        # The leader may already be assigning to the old id: start over.
        _prepare_rebalance(s)
    else:
        _maybe_prepare_rebalance_or_complete_join(s)


def _update_member(s: _Step, member: Member, e: Join) -> None:
    member.protocols = e.protocols
    member.rebalance_timeout_ms = e.rebalance_timeout_ms
    member.session_timeout_ms = e.session_timeout_ms
    if member.join_token is not None:
        superseded = JoinResponse(member.join_token, ErrorCode.rebalance_in_progress)
        s.out.append(replace(superseded, member_id=member.member_id))
    member.join_token = e.token


def _join_answer(
    g: Group, token: int, member_id: str, *, with_members: bool = True
) -> JoinResponse:
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


# -- SyncGroup, Heartbeat, LeaveGroup, DeleteGroups ----------------------------------------


def _on_sync(s: _Step, e: Sync) -> None:
    g = s.group
    error = _sync_precheck(g, e)
    if error is not ErrorCode.none:
        s.out.append(SyncResponse(e.token, error))
        return
    member = g.members[e.member_id]
    _mark_synced(g, member.member_id)
    if g.state is STABLE:
        member.last_heartbeat_ms = s.now
        s.out.append(_sync_answer(g, e.token, member))
        return
    if member.sync_token is not None:
        s.out.append(SyncResponse(member.sync_token, ErrorCode.rebalance_in_progress))
    member.sync_token = e.token
    if g.leader_id == member.member_id:
        for m in g.members.values():
            m.assignment = e.assignments.get(m.member_id, b"")
        g.state = STABLE
        _release_syncs(s, ErrorCode.none)


def _member_of_generation(
    g: Group, member_id: str, group_instance_id: str | None, generation_id: int
) -> ErrorCode:
    """The checks Sync and Heartbeat share: a live group, a known member, this generation."""
    if g.state is DEAD:
        return ErrorCode.coordinator_not_available
    error = validate_member(g, member_id, group_instance_id)
    if error is not ErrorCode.none:
        return error
    if generation_id != g.generation_id:
        return ErrorCode.illegal_generation
    return ErrorCode.none


def _sync_precheck(g: Group, e: Sync) -> ErrorCode:
    error = _member_of_generation(g, e.member_id, e.group_instance_id, e.generation_id)
    if error is not ErrorCode.none:
        return error
    if _differs(e.protocol_type, g.protocol_type) or _differs(e.protocol_name, g.protocol_name):
        return ErrorCode.inconsistent_group_protocol
    if g.state is PREPARING:
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def _differs(requested: str | None, actual: str | None) -> bool:
    return requested is not None and actual is not None and requested != actual


def _sync_answer(g: Group, token: int, member: Member) -> SyncResponse:
    return SyncResponse(token, ErrorCode.none, g.protocol_type, g.protocol_name, member.assignment)


def _mark_synced(g: Group, member_id: str) -> None:
    g.pending_sync.discard(member_id)
    if not g.pending_sync:
        g.sync_deadline_ms = None


def _release_syncs(s: _Step, error: ErrorCode) -> None:
    """Answer every parked sync: with its assignment, or with `error` and none."""
    for member in s.group.members.values():
        if member.sync_token is not None:
            answer = _sync_answer(s.group, member.sync_token, member)
            s.out.append(answer if error is ErrorCode.none else SyncResponse(answer.token, error))
            member.sync_token = None
            member.last_heartbeat_ms = s.now


def _on_heartbeat(s: _Step, e: Heartbeat) -> None:
    g = s.group
    error = _heartbeat_error(g, e)
    if error in (ErrorCode.none, ErrorCode.rebalance_in_progress):
        g.members[e.member_id].last_heartbeat_ms = s.now
    s.out.append(HeartbeatResponse(e.token, error))


def _heartbeat_error(g: Group, e: Heartbeat) -> ErrorCode:
    error = _member_of_generation(g, e.member_id, e.group_instance_id, e.generation_id)
    if error is not ErrorCode.none:
        return error
    if g.state is PREPARING:
        return ErrorCode.rebalance_in_progress
    # CompletingRebalance included: members heartbeat while waiting for the leader's sync.
    return ErrorCode.none


def _on_leave(s: _Step, e: Leave) -> None:
    if s.group.state is DEAD:
        s.out.append(LeaveResponse(e.token, ErrorCode.coordinator_not_available))
        return
    results = tuple(
        LeftMember(member_id, instance_id, _leave_one(s, member_id, instance_id))
        for member_id, instance_id in e.members
    )
    s.out.append(LeaveResponse(e.token, ErrorCode.none, results))


def _leave_one(s: _Step, member_id: str, instance_id: str | None) -> ErrorCode:
    g = s.group
    if member_id == UNKNOWN_MEMBER_ID:
        current = g.static_members.get(instance_id) if instance_id is not None else None
        if current is None:
            return ErrorCode.unknown_member_id
        _remove_member_and_update_group(s, current)
        return ErrorCode.none
    if member_id in g.pending_members:
        del g.pending_members[member_id]
        _maybe_complete_join(s)
        return ErrorCode.none
    error = validate_member(g, member_id, instance_id)
    if error is ErrorCode.none:
        _remove_member_and_update_group(s, member_id)
    return error


def _on_delete(s: _Step, e: Delete) -> None:
    state = s.group.state
    if state is DEAD:
        error = ErrorCode.group_id_not_found
    elif state is EMPTY:
        _go_dead(s, ErrorCode.coordinator_not_available)
        error = ErrorCode.none
    else:
        error = ErrorCode.non_empty_group
    s.out.append(DeleteResponse(e.token, error))


def _go_dead(s: _Step, error: ErrorCode) -> None:
    for member in s.group.members.values():
        _answer_parked(s, member, error)
    s.group.state = DEAD
    s.group.pending_members.clear()
    s.group.pending_sync.clear()
    s.group.join_deadline_ms = s.group.sync_deadline_ms = None


# -- rebalance core -----------------------------------------------------------------------


def _maybe_prepare_rebalance_or_complete_join(s: _Step) -> None:
    if s.group.state in (EMPTY, STABLE, COMPLETING):
        _prepare_rebalance(s)
    else:
        _maybe_complete_join(s)


def _prepare_rebalance(s: _Step) -> None:
    g = s.group
    if g.state is COMPLETING:
        _release_syncs(s, ErrorCode.rebalance_in_progress)
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
        _complete_join(s)
    else:
        g.join_deadline_ms = s.now + g.rebalance_timeout_ms()


def _maybe_complete_join(s: _Step) -> None:
    g = s.group
    if g.state is PREPARING and not g.initial_rebalance and g.has_all_members_joined():
        _complete_join(s)


def _complete_join(s: _Step) -> None:
    g = s.group
    g.join_deadline_ms = None
    g.initial_rebalance = g.new_member_added = False
    for member in list(g.members.values()):
        if not member.awaiting_join and member.group_instance_id is None:
            _drop_member(s, member.member_id)
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
            s.out.append(_join_answer(g, member.join_token, member.member_id))
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


def _remove_member_and_update_group(s: _Step, member_id: str) -> None:
    _drop_member(s, member_id)
    if s.group.state in (STABLE, COMPLETING):
        _prepare_rebalance(s)
    else:
        _maybe_complete_join(s)


def _drop_member(s: _Step, member_id: str) -> None:
    g = s.group
    member = g.members.pop(member_id)
    _answer_parked(s, member, ErrorCode.unknown_member_id)
    if member.group_instance_id is not None:
        g.static_members.pop(member.group_instance_id, None)
    g.pending_sync.discard(member_id)
    if g.leader_id == member_id:
        g.leader_id = next(iter(g.members), None)


def _answer_parked(s: _Step, member: Member, error: ErrorCode) -> None:
    if member.join_token is not None:
        s.out.append(JoinResponse(member.join_token, error, member_id=member.member_id))
        member.join_token = None
    if member.sync_token is not None:
        s.out.append(SyncResponse(member.sync_token, error))
        member.sync_token = None


# -- timers ----------------------------------------------------------------------------

_PENDING, _SESSION, _JOIN, _SYNC = range(4)  # also the order of timers due at one instant


def _timers(g: Group, config: GroupConfig) -> Iterator[tuple[int, int, str]]:
    """(deadline, kind, key) of every armed timer."""
    if g.state is DEAD:
        return
    for member_id, deadline in g.pending_members.items():
        yield deadline, _PENDING, member_id
    for member in g.members.values():
        expiry = member.expiry_ms(config)
        if expiry is not None:
            yield expiry, _SESSION, member.member_id
    if g.state is PREPARING and g.join_deadline_ms is not None:
        yield g.join_deadline_ms, _JOIN, ""
    if g.state in (COMPLETING, STABLE) and g.sync_deadline_ms is not None:
        yield g.sync_deadline_ms, _SYNC, ""


def _fire_due_timers(s: _Step) -> None:
    """Fire due timers earliest first, each at its own deadline (as Kafka's timer would)."""
    while True:
        due = min(_timers(s.group, s.config), default=None)
        if due is None or due[0] > s.now:
            return
        deadline, kind, key = due
        at = _Step(s.group, deadline, s.config, s.out)
        if kind == _PENDING:
            del s.group.pending_members[key]
            _maybe_complete_join(at)
        elif kind == _SESSION:
            _remove_member_and_update_group(at, key)
        elif kind == _JOIN:
            _on_join_deadline(at)
        else:
            _on_sync_deadline(at)


def _on_join_deadline(s: _Step) -> None:
    g = s.group
    if g.initial_rebalance and g.new_member_added and g.initial_remaining_ms > 0:
        g.new_member_added = False
        delay = min(s.config.initial_rebalance_delay_ms, g.initial_remaining_ms)
        g.initial_remaining_ms = max(g.initial_remaining_ms - g.initial_delay_ms, 0)
        g.initial_delay_ms = delay
        g.join_deadline_ms = s.now + delay
    else:
        _complete_join(s)


def _on_sync_deadline(s: _Step) -> None:
    """Members that joined but never synced within the rebalance timeout are removed."""
    g = s.group
    g.sync_deadline_ms = None
    laggards = [member_id for member_id in g.members if member_id in g.pending_sync]
    for member_id in laggards:
        _drop_member(s, member_id)
    if laggards:
        _prepare_rebalance(s)

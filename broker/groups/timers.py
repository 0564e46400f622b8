"""The group's timers: which are armed, and what each does when it fires.

Owns: the four timer kinds (a handed-out member id, a member's session, the join
phase with its initial delay, the sync phase), their order at one instant, and their
effects: a forgotten id, an expired member removed, a join phase completed or its
initial delay extended, members that never synced removed.

Guarantees: pure (no clock, no I/O); `fire_due_timers` fires every timer with a
deadline <= `Step.now`, earliest first, each at its own deadline (as Kafka's timer
wheel would), so a result does not depend on when the caller ticked; afterwards no
armed deadline is <= `Step.now`. A Dead group has no timers.
"""

from __future__ import annotations

from collections.abc import Iterator

from tidelog.broker.groups.model import COMPLETING, DEAD, PREPARING, STABLE, Group, GroupConfig
from tidelog.broker.groups.rebalance import (
    complete_join,
    drop_member,
    maybe_complete_join,
    prepare_rebalance,
    remove_member_and_update_group,
)
from tidelog.broker.groups.step import Step

_PENDING, _SESSION, _JOIN, _SYNC = range(4)  # also the order of timers due at one instant


def armed_timers(g: Group, config: GroupConfig) -> Iterator[tuple[int, int, str]]:
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


def fire_due_timers(s: Step) -> None:
    """Fire due timers earliest first, each at its own deadline (as Kafka's timer would)."""
    while True:
        due = min(armed_timers(s.group, s.config), default=None)
        if due is None or due[0] > s.now:
            return
        deadline, kind, key = due
        at = s.at(deadline)
        if kind == _PENDING:
            del s.group.pending_members[key]
            maybe_complete_join(at)
        elif kind == _SESSION:
            remove_member_and_update_group(at, key)
        elif kind == _JOIN:
            _on_join_deadline(at)
        else:
            _on_sync_deadline(at)


def _on_join_deadline(s: Step) -> None:
    g = s.group
    if g.initial_rebalance and g.new_member_added and g.initial_remaining_ms > 0:
        g.new_member_added = False
        delay = min(s.config.initial_rebalance_delay_ms, g.initial_remaining_ms)
        g.initial_remaining_ms = max(g.initial_remaining_ms - g.initial_delay_ms, 0)
        g.initial_delay_ms = delay
        g.join_deadline_ms = s.now + delay
    else:
        complete_join(s)


def _on_sync_deadline(s: Step) -> None:
    """Members that joined but never synced within the rebalance timeout are removed."""
    g = s.group
    g.sync_deadline_ms = None
    laggards = [member_id for member_id in g.members if member_id in g.pending_sync]
    for member_id in laggards:
        drop_member(s, member_id)
    if laggards:
        prepare_rebalance(s)

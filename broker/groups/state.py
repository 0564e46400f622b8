"""One classic consumer group as a pure state machine: `handle(group, event, now_ms, config)`.

Owns: the entry point. `handle` fires due timers, dispatches the event to the module
that owns its transitions, fires due timers again and ends with one `Wakeup`;
`next_deadline` is the earliest armed timer. Membership, generations, the rebalance
protocol (Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and Dead),
member ids (KIP-394), static membership (KIP-345), timers and Kafka's error for every
JoinGroup, SyncGroup, Heartbeat and LeaveGroup follow Kafka's classic GroupCoordinator;
the broker relays protocols and assignments and never assigns.

Where the transitions live (all in `broker/groups/`): join.py (JoinGroup), sync.py
(SyncGroup), membership.py (Heartbeat, LeaveGroup, DeleteGroups, Unload), timers.py
(sessions, join/sync deadlines, the initial delay), rebalance.py (the core they all end
in), step.py (the context of one call). Events and effects are in events.py, the data in
model.py, the protocol vote in protocol_vote.py, read-only checks (OffsetCommit,
DescribeGroups, ListGroups) in queries.py. docs/group-coordinator.md says why.

`handle` mutates the `Group` in place (one owner: the coordinator task for that group)
and returns effects: responses keyed by the caller's request token, then one `Wakeup`.

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

from tidelog.broker.groups.events import (
    Delete,
    Effect,
    Event,
    Heartbeat,
    Join,
    Leave,
    Sync,
    Tick,
    Unload,
    Wakeup,
)
from tidelog.broker.groups.join import on_join
from tidelog.broker.groups.membership import go_dead, on_delete, on_heartbeat, on_leave
from tidelog.broker.groups.model import (
    DEFAULT_CONFIG,
    Group,
    GroupConfig,
    GroupState,
    Member,
    random_member_id,
    validate_member,
)
from tidelog.broker.groups.step import Step
from tidelog.broker.groups.sync import on_sync
from tidelog.broker.groups.timers import armed_timers, fire_due_timers
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


def handle(
    group: Group, event: Event, now_ms: int, config: GroupConfig = DEFAULT_CONFIG
) -> list[Effect]:
    """Apply one event at `now_ms`; return the responses it releases, then a Wakeup."""
    step = Step(group, now_ms, config, [])
    fire_due_timers(step)
    match event:
        case Join():
            on_join(step, event)
        case Sync():
            on_sync(step, event)
        case Heartbeat():
            on_heartbeat(step, event)
        case Leave():
            on_leave(step, event)
        case Delete():
            on_delete(step, event)
        case Unload():
            go_dead(step, ErrorCode.not_coordinator)
        case Tick():
            pass
    fire_due_timers(step)
    step.out.append(Wakeup(next_deadline(group, config)))
    return step.out


def next_deadline(group: Group, config: GroupConfig) -> int | None:
    return min((deadline for deadline, _, _ in armed_timers(group, config)), default=None)

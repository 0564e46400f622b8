"""The data of one classic consumer group: its state, members and settings.

Owns: `GroupState` (with Kafka's state names), `Member`, `Group`, `GroupConfig`, and
the member checks the group APIs share (`validate_member`, and
`validate_generation_member` for Sync and Heartbeat). Plain mutable data with small
derived views; the transitions live in the modules `broker/groups/state.py` dispatches
to, and state.py re-exports these names.

Guarantees: nothing here reads a clock or does I/O; ids come from
`GroupConfig.new_member_id` (random UUIDs by default, injectable for tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from tidelog.broker.groups.events import ProtocolEntry
from tidelog.protocol.errors import ErrorCode


class GroupState(Enum):
    """Values are the names Kafka reports in DescribeGroups and ListGroups."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


EMPTY = GroupState.EMPTY
PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
DEAD = GroupState.DEAD


def random_member_id(prefix: str) -> str:
    """Kafka's form: client id (or group instance id) + "-" + a random UUID."""
    return f"{prefix}-{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class GroupConfig:
    initial_rebalance_delay_ms: int = 0
    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    max_group_size: int | None = None
    # A member added by a join that has not completed yet expires after this (Kafka: 5 min).
    new_member_join_timeout_ms: int = 300_000
    new_member_id: Callable[[str], str] = random_member_id


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[ProtocolEntry, ...]
    assignment: bytes = b""
    last_heartbeat_ms: int = 0
    is_new: bool = False
    join_token: int | None = None  # a parked JoinGroup
    sync_token: int | None = None  # a parked SyncGroup

    @property
    def awaiting_join(self) -> bool:
        return self.join_token is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_token is not None

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata(self, protocol_name: str) -> bytes:
        return next(data for name, data in self.protocols if name == protocol_name)

    def expiry_ms(self, config: GroupConfig) -> int | None:
        if self.is_new:
            return self.last_heartbeat_ms + config.new_member_join_timeout_ms
        if self.awaiting_join or self.awaiting_sync:
            return None  # a parked request is proof of life
        return self.last_heartbeat_ms + self.session_timeout_ms


@dataclass(slots=True)
class Group:
    group_id: str
    state: GroupState = EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending_members: dict[str, int] = field(default_factory=dict)  # id -> expiry (KIP-394)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    pending_sync: set[str] = field(default_factory=set)  # joined this generation, not synced
    join_deadline_ms: int | None = None  # PreparingRebalance: complete the join phase
    sync_deadline_ms: int | None = None  # members still in pending_sync are removed
    initial_rebalance: bool = False  # this rebalance started from Empty
    initial_delay_ms: int = 0
    initial_remaining_ms: int = 0
    new_member_added: bool = False

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        joined = all(m.awaiting_join for m in self.members.values())
        return joined and not self.pending_members

    def protocol_preferences(self) -> list[list[str]]:
        return [m.protocol_names() for m in self.members.values()]


DEFAULT_CONFIG = GroupConfig()


def validate_member(group: Group, member_id: str, group_instance_id: str | None) -> ErrorCode:
    """Kafka's validateMember: a static instance id must map to this member id."""
    if group_instance_id is not None:
        current = group.static_members.get(group_instance_id)
        if current is None:
            return ErrorCode.unknown_member_id
        if current != member_id:
            return ErrorCode.fenced_instance_id
    if member_id not in group.members:
        return ErrorCode.unknown_member_id
    return ErrorCode.none


def validate_generation_member(
    group: Group, member_id: str, group_instance_id: str | None, generation_id: int
) -> ErrorCode:
    """The checks Sync and Heartbeat share: a live group, a known member, this generation."""
    if group.state is DEAD:
        return ErrorCode.coordinator_not_available
    error = validate_member(group, member_id, group_instance_id)
    if error is not ErrorCode.none:
        return error
    if generation_id != group.generation_id:
        return ErrorCode.illegal_generation
    return ErrorCode.none

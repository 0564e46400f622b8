"""What goes into and comes out of the group state machine (`broker/groups/state.py`).

Owns: the event types a coordinator feeds in (one per classic group API, plus `Tick`,
`Delete` and `Unload`) and the effect types it gets back. Every request event carries
the caller's `token`; every response effect carries it back, because JoinGroup and
SyncGroup answers are deferred and may arrive in the effects of a later call (another
member's request, or a `Tick`).

Guarantees: all are immutable values with no behaviour. Kafka's wire details
(versions, nullable strings, throttle times) stay with the handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tidelog.protocol.errors import ErrorCode

UNKNOWN_MEMBER_ID = ""
"""The member id a client sends before it has one (Kafka's JoinGroupRequest.UNKNOWN_MEMBER_ID)."""

NO_GENERATION = -1

ProtocolEntry = tuple[str, bytes]
"""One (protocol name, protocol metadata) pair from a JoinGroup request, most preferred first."""


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """JoinGroup v0-7. `require_known_member_id` is True from v4 on (KIP-394)."""

    token: int
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[ProtocolEntry, ...]
    require_known_member_id: bool = True
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Sync:
    """SyncGroup v0-5. Only the leader sends `assignments`; protocol fields are v5+."""

    token: int
    member_id: str
    generation_id: int
    group_instance_id: str | None = None
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignments: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Heartbeat v0-4."""

    token: int
    member_id: str
    generation_id: int
    group_instance_id: str | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """LeaveGroup v0-4: (member_id, group_instance_id) pairs; v0-2 send exactly one.

    An empty member id with an instance id removes that static member (admin removal).
    """

    token: int
    members: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed: fire whatever session, join, sync or delay timer is due."""


@dataclass(frozen=True, slots=True)
class Delete:
    """DeleteGroups for this group: only an Empty group may be deleted."""

    token: int


@dataclass(frozen=True, slots=True)
class Unload:
    """This broker stops coordinating the group: parked requests get NOT_COORDINATOR."""


Event = Join | Sync | Heartbeat | Leave | Tick | Delete | Unload


# -- effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinedMember:
    """One entry of the member list the leader receives, with the chosen protocol's metadata."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResponse:
    """Answer to the Join whose token this is. `members` is non-empty only for the leader."""

    token: int
    error: ErrorCode
    member_id: str = UNKNOWN_MEMBER_ID
    generation_id: int = NO_GENERATION
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    members: tuple[JoinedMember, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncResponse:
    token: int
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    token: int
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class LeftMember:
    """Per-member result of a LeaveGroup (v3+ report these; v0-2 use the only one)."""

    member_id: str
    group_instance_id: str | None
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class LeaveResponse:
    token: int
    error: ErrorCode
    members: tuple[LeftMember, ...] = ()


@dataclass(frozen=True, slots=True)
class DeleteResponse:
    token: int
    error: ErrorCode


@dataclass(frozen=True, slots=True)
class Wakeup:
    """Always the last effect of a call: when to send the next `Tick` (None: no timer)."""

    at_ms: int | None


Effect = JoinResponse | SyncResponse | HeartbeatResponse | LeaveResponse | DeleteResponse | Wakeup

"""Read-only answers about a classic group: offset-commit checks, DescribeGroups, ListGroups.

Owns: Kafka's membership checks for OffsetCommit v2-8, the DescribeGroups and ListGroups
views of a group, and the answers for requests naming a group this coordinator does not
have. Every function takes `Group | None` (None: no such group) and mutates nothing.

Guarantees: pure functions; state names are Kafka's ("Empty", "PreparingRebalance",
"CompletingRebalance", "Stable", "Dead"); a missing group describes as "Dead".
"""

from __future__ import annotations

from dataclasses import dataclass

from tidelog.broker.groups.events import (
    NO_GENERATION,
    UNKNOWN_MEMBER_ID,
    Delete,
    DeleteResponse,
    Effect,
    Event,
    Heartbeat,
    HeartbeatResponse,
    Join,
    JoinResponse,
    Leave,
    LeaveResponse,
    LeftMember,
    Sync,
    SyncResponse,
)
from tidelog.broker.groups.model import (
    COMPLETING,
    DEAD,
    EMPTY,
    STABLE,
    Group,
    Member,
    validate_member,
)
from tidelog.protocol.errors import ErrorCode


def validate_commit(
    group: Group | None, member_id: str, group_instance_id: str | None, generation_id: int
) -> ErrorCode:
    """Kafka's (non-transactional) OffsetCommit check; ErrorCode.none means store the offsets.

    Generation -1 with no member id is a "simple" commit by a consumer (or admin) that does
    not use group management: allowed only while the group has no members.
    """
    if group is None:
        # Creating the (Empty) group for a simple commit is the caller's job.
        return ErrorCode.none if generation_id < 0 else ErrorCode.illegal_generation
    if group.state is DEAD:
        return ErrorCode.coordinator_not_available
    if generation_id < 0 and group.state is EMPTY:
        return ErrorCode.none
    if generation_id >= 0 or member_id != UNKNOWN_MEMBER_ID or group_instance_id is not None:
        error = validate_member(group, member_id, group_instance_id)
        if error is not ErrorCode.none:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
    elif group.state is not EMPTY:
        return ErrorCode.unknown_member_id
    if group.state is COMPLETING:
        # The member has the new generation but no assignment yet: let it finish syncing.
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def state_name(group: Group | None) -> str:
    return DEAD.value if group is None else group.state.value


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """DescribeGroups: metadata and assignments are shown only while Stable (as Kafka)."""

    group_id: str
    state: str
    protocol_type: str
    protocol_data: str  # the chosen protocol's name
    members: tuple[MemberDescription, ...]


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str


def describe(group_id: str, group: Group | None) -> GroupDescription:
    if group is None or group.state is DEAD:
        return GroupDescription(group_id, DEAD.value, "", "", ())
    protocol = group.protocol_name if group.state is STABLE else None
    members = tuple(_describe_member(m, protocol) for m in group.members.values())
    return GroupDescription(
        group_id, group.state.value, group.protocol_type or "", protocol or "", members
    )


def _describe_member(member: Member, protocol: str | None) -> MemberDescription:
    metadata = member.metadata(protocol) if protocol is not None else b""
    assignment = member.assignment if protocol is not None else b""
    return MemberDescription(
        member.member_id,
        member.group_instance_id,
        member.client_id,
        member.client_host,
        metadata,
        assignment,
    )


def listing(group: Group) -> GroupListing:
    return GroupListing(group.group_id, group.protocol_type or "", group.state.value)


def creates_group(event: Event) -> bool:
    """Only a JoinGroup without a member id brings a missing group into being."""
    return isinstance(event, Join) and event.member_id == UNKNOWN_MEMBER_ID


def answer_missing_group(event: Event) -> list[Effect]:
    """Kafka's answers to a request naming a group the coordinator does not have."""
    unknown = ErrorCode.unknown_member_id
    match event:
        case Join():
            return [JoinResponse(event.token, unknown, event.member_id, NO_GENERATION)]
        case Sync():
            return [SyncResponse(event.token, unknown)]
        case Heartbeat():
            return [HeartbeatResponse(event.token, unknown)]
        case Leave():
            left = tuple(LeftMember(m, i, unknown) for m, i in event.members)
            return [LeaveResponse(event.token, ErrorCode.none, left)]
        case Delete():
            return [DeleteResponse(event.token, ErrorCode.group_id_not_found)]
    return []


def answer_not_coordinator(event: Event) -> list[Effect]:
    """The answers of a broker that does not coordinate the group (any more)."""
    return _refused(event, ErrorCode.not_coordinator)


def answer_invalid_group_id(event: Event) -> list[Effect]:
    """The answers to a membership request that names no group (group id "")."""
    return _refused(event, ErrorCode.invalid_group_id)


def _refused(event: Event, code: ErrorCode) -> list[Effect]:
    match event:
        case Join():
            return [JoinResponse(event.token, code, event.member_id, NO_GENERATION)]
        case Sync():
            return [SyncResponse(event.token, code)]
        case Heartbeat():
            return [HeartbeatResponse(event.token, code)]
        case Leave():
            return [LeaveResponse(event.token, code, ())]
        case Delete():
            return [DeleteResponse(event.token, code)]
    return []

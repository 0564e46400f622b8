"""JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups and DescribeGroups on a real
node: the version rules the handlers keep, and what the coordinator answers through
them. The state machine itself is pinned in test_group_state.py."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from tests.unit.node_harness import NodeHarness, request, run_node
from tidelog.protocol.errors import ErrorCode

JOIN, HEARTBEAT, LEAVE, SYNC, DESCRIBE, LIST = 11, 12, 13, 14, 15, 16
OFFSET_COMMIT = 8
SECONDS_10 = datetime.timedelta(seconds=10)


def _join(group: str, member_id: str = "", version: int = 7, protocol: str = "range") -> Any:
    return request(
        JOIN,
        version,
        "JoinGroupRequest",
        group_id=group,
        session_timeout=SECONDS_10,
        rebalance_timeout=SECONDS_10,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=(
            request(JOIN, version, "JoinGroupRequestProtocol", name=protocol, metadata=b"m"),
        ),
    )


def _sync(group: str, member_id: str, generation: int, assignment: bytes = b"") -> Any:
    assignments = (
        (
            request(
                SYNC, 5, "SyncGroupRequestAssignment", member_id=member_id, assignment=assignment
            ),
        )
        if assignment
        else ()
    )
    return request(
        SYNC,
        5,
        "SyncGroupRequest",
        group_id=group,
        generation_id=generation,
        member_id=member_id,
        protocol_type="consumer",
        protocol_name="range",
        assignments=assignments,
    )


def _heartbeat(group: str, member_id: str, generation: int) -> Any:
    return request(
        HEARTBEAT,
        4,
        "HeartbeatRequest",
        group_id=group,
        generation_id=generation,
        member_id=member_id,
    )


async def stable_member(h: NodeHarness, group: str) -> tuple[str, int]:
    """Join `group` as its only member and sync; (member id, generation)."""
    first = await h.call(_join(group))
    assert first.error_code == ErrorCode.member_id_required
    joined = await h.call(_join(group, first.member_id))
    assert joined.error_code == ErrorCode.none
    synced = await h.call(_sync(group, joined.member_id, joined.generation_id, b"plan"))
    assert (synced.error_code, synced.assignment) == (ErrorCode.none, b"plan")
    return joined.member_id, joined.generation_id


def test_join_group_needs_a_member_id_then_makes_the_only_member_leader(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        first = await h.call(_join("g"))
        assert first.error_code == ErrorCode.member_id_required
        assert first.member_id.startswith("unit-")  # client id, as Kafka names members
        joined = await h.call(_join("g", first.member_id))
        assert (joined.error_code, joined.generation_id) == (ErrorCode.none, 1)
        assert joined.leader == joined.member_id == first.member_id
        assert (joined.protocol_type, joined.protocol_name) == ("consumer", "range")
        assert [(m.member_id, m.metadata) for m in joined.members] == [(first.member_id, b"m")]

    run_node(tmp_path, body)


def test_join_group_v0_needs_no_member_id_first_and_refuses_a_nameless_group(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        joined = await h.call(_join("g", version=0))
        assert (joined.error_code, joined.generation_id) == (ErrorCode.none, 1)
        nameless = await h.call(_join("", version=0))
        assert nameless.error_code == ErrorCode.invalid_group_id
        unknown = await h.call(_join("g", "stranger", version=5))
        assert unknown.error_code == ErrorCode.unknown_member_id

    run_node(tmp_path, body)


def test_sync_group_hands_the_leader_its_assignment_and_refuses_a_stale_generation(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        member, generation = await stable_member(h, "g")
        stale = await h.call(_sync("g", member, generation - 1))
        assert stale.error_code == ErrorCode.illegal_generation
        stranger = await h.call(_sync("g", "stranger", generation))
        assert stranger.error_code == ErrorCode.unknown_member_id

    run_node(tmp_path, body)


def test_heartbeat_of_a_stable_member_is_answered_none_and_a_stranger_unknown(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        member, generation = await stable_member(h, "g")
        ok = await h.call(_heartbeat("g", member, generation))
        assert ok.error_code == ErrorCode.none
        stale = await h.call(_heartbeat("g", member, generation + 1))
        assert stale.error_code == ErrorCode.illegal_generation
        missing = await h.call(_heartbeat("no-such-group", member, generation))
        assert missing.error_code == ErrorCode.unknown_member_id

    run_node(tmp_path, body)


def test_leave_group_v3_answers_each_member_and_empties_the_group(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        member, _ = await stable_member(h, "g")
        members = tuple(
            request(LEAVE, 4, "MemberIdentity", member_id=m, group_instance_id=None)
            for m in (member, "stranger")
        )
        response = await h.call(
            request(LEAVE, 4, "LeaveGroupRequest", group_id="g", members=members)
        )
        assert response.error_code == ErrorCode.none
        assert [(m.member_id, m.error_code) for m in response.members] == [
            (member, ErrorCode.none),
            ("stranger", ErrorCode.unknown_member_id),
        ]
        group = h.node.live_group("g")
        assert group is not None and not group.members

    run_node(tmp_path, body)


def test_leave_group_v0_carries_the_one_members_error_at_top_level(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await stable_member(h, "g")
        response = await h.call(
            request(LEAVE, 0, "LeaveGroupRequest", group_id="g", member_id="stranger")
        )
        assert response.error_code == ErrorCode.unknown_member_id

    run_node(tmp_path, body)


async def _simple_commit(h: NodeHarness, group: str, topic: str, offset: int) -> None:
    partition = request(
        OFFSET_COMMIT,
        8,
        "OffsetCommitRequestPartition",
        partition_index=0,
        committed_offset=offset,
        committed_metadata=None,
    )
    commit = request(
        OFFSET_COMMIT,
        8,
        "OffsetCommitRequest",
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        topics=(
            request(
                OFFSET_COMMIT, 8, "OffsetCommitRequestTopic", name=topic, partitions=(partition,)
            ),
        ),
    )
    ((answer,),) = [t.partitions for t in (await h.call(commit)).topics]
    assert answer.error_code == ErrorCode.none


def test_list_groups_lists_live_and_offset_only_groups_filtered_by_state(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        await stable_member(h, "live")
        await _simple_commit(h, "offsets-only", "t", 5)
        every = await h.call(request(LIST, 4, "ListGroupsRequest", states_filter=()))
        assert every.error_code == ErrorCode.none
        assert [(g.group_id, g.group_state, g.protocol_type) for g in every.groups] == [
            ("live", "Stable", "consumer"),
            ("offsets-only", "Empty", ""),
        ]
        empty = await h.call(request(LIST, 4, "ListGroupsRequest", states_filter=("empty",)))
        assert [g.group_id for g in empty.groups] == ["offsets-only"]

    run_node(tmp_path, body)


def test_list_groups_v5_types_every_group_classic_and_filters_by_type(tmp_path: Path) -> None:
    """KIP-848's v5: librdkafka's ListConsumerGroups (its suite's 0081 run as Kafka 3.8+)
    expects each group's type set by the broker."""

    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        await stable_member(h, "live")
        await _simple_commit(h, "offsets-only", "t", 5)

        async def listed(*types: str) -> list[tuple[str, str]]:
            r = await h.call(
                request(LIST, 5, "ListGroupsRequest", states_filter=(), types_filter=types)
            )
            assert r.error_code == ErrorCode.none
            return [(g.group_id, g.group_type) for g in r.groups]

        every = [("live", "classic"), ("offsets-only", "classic")]
        assert await listed() == every
        assert await listed("Classic") == every  # case-insensitive, as Kafka parses it
        assert await listed("consumer", "classic") == every
        assert await listed("consumer") == []  # no KIP-848 groups here

    run_node(tmp_path, body)


def test_list_groups_of_a_fenced_broker_lists_no_offset_only_groups(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        await _simple_commit(h, "offsets-only", "t", 5)
        h.node.store.step_down("unit test: another broker took over")
        response = await h.call(request(LIST, 4, "ListGroupsRequest", states_filter=()))
        assert (response.error_code, response.groups) == (ErrorCode.none, ())

    run_node(tmp_path, body)


def _describe(*groups: str) -> Any:
    return request(
        DESCRIBE, 5, "DescribeGroupsRequest", groups=groups, include_authorized_operations=False
    )


def test_describe_groups_describes_live_offset_only_and_unknown_groups(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        member, _ = await stable_member(h, "live")
        await _simple_commit(h, "offsets-only", "t", 5)
        live, offsets_only, unknown = (
            await h.call(_describe("live", "offsets-only", "unknown"))
        ).groups
        assert (live.error_code, live.group_state, live.protocol_data) == (
            ErrorCode.none,
            "Stable",
            "range",
        )
        assert [(m.member_id, m.client_id, m.member_assignment) for m in live.members] == [
            (member, "unit", b"plan")
        ]
        assert (offsets_only.group_state, offsets_only.members) == ("Empty", ())
        assert (unknown.error_code, unknown.group_state) == (ErrorCode.none, "Dead")

    run_node(tmp_path, body)


def test_describe_groups_on_a_fenced_broker_is_not_coordinator(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await stable_member(h, "live")
        h.node.store.step_down("unit test: another broker took over")
        (group,) = (await h.call(_describe("live"))).groups
        assert (group.error_code, group.group_state) == (ErrorCode.not_coordinator, "")

    run_node(tmp_path, body)

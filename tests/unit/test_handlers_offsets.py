"""OffsetCommit, OffsetFetch, OffsetDelete and DeleteGroups on a real node: committed
offsets land in the bucket's folded state and come back; refusals change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.node_harness import NodeHarness, request, run_node
from tests.unit.test_handlers_groups import stable_member
from tidelog.protocol.errors import ErrorCode

OFFSET_COMMIT, OFFSET_FETCH, DELETE_GROUPS, OFFSET_DELETE = 8, 9, 42, 47


def _commit(
    group: str,
    rows: list[tuple[str, int, int, str | None]],
    member_id: str = "",
    generation: int = -1,
) -> Any:
    by_topic: dict[str, list[Any]] = {}
    for topic, partition, offset, metadata in rows:
        by_topic.setdefault(topic, []).append(
            request(
                OFFSET_COMMIT,
                8,
                "OffsetCommitRequestPartition",
                partition_index=partition,
                committed_offset=offset,
                committed_leader_epoch=-1,
                committed_metadata=metadata,
            )
        )
    return request(
        OFFSET_COMMIT,
        8,
        "OffsetCommitRequest",
        group_id=group,
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        topics=tuple(
            request(OFFSET_COMMIT, 8, "OffsetCommitRequestTopic", name=t, partitions=tuple(p))
            for t, p in by_topic.items()
        ),
    )


def _errors(response: Any) -> dict[tuple[str, int], int]:
    return {
        (t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions
    }


def _fetch_v8(group: str, topics: dict[str, tuple[int, ...]] | None = None) -> Any:
    wanted = (
        None
        if topics is None
        else tuple(
            request(OFFSET_FETCH, 8, "OffsetFetchRequestTopics", name=t, partition_indexes=p)
            for t, p in topics.items()
        )
    )
    group_request = request(
        OFFSET_FETCH, 8, "OffsetFetchRequestGroup", group_id=group, topics=wanted
    )
    return request(OFFSET_FETCH, 8, "OffsetFetchRequest", groups=(group_request,))


def _fetched_v8(response: Any) -> tuple[int, dict[tuple[str, int], tuple[int, str]]]:
    (group,) = response.groups
    return group.error_code, {
        (t.name, p.partition_index): (p.committed_offset, p.metadata)
        for t in group.topics
        for p in t.partitions
    }


def test_offset_commit_stores_offsets_that_offset_fetch_returns(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        committed = await h.call(_commit("g", [("t", 0, 41, "m"), ("t", 1, 7, None)]))
        assert _errors(committed) == {("t", 0): ErrorCode.none, ("t", 1): ErrorCode.none}
        assert _fetched_v8(await h.call(_fetch_v8("g"))) == (
            ErrorCode.none,
            {("t", 0): (41, "m"), ("t", 1): (7, "")},
        )
        topic = request(
            OFFSET_FETCH, 7, "OffsetFetchRequestTopic", name="t", partition_indexes=(0, 1)
        )
        v7 = await h.call(
            request(OFFSET_FETCH, 7, "OffsetFetchRequest", group_id="g", topics=(topic,))
        )
        assert v7.error_code == ErrorCode.none
        assert [p.committed_offset for t in v7.topics for p in t.partitions] == [41, 7]

    run_node(tmp_path, body)


def test_offset_commit_of_a_member_of_a_live_group_checks_its_generation(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        member, generation = await stable_member(h, "g")
        ok = await h.call(_commit("g", [("t", 0, 3, None)], member, generation))
        assert _errors(ok) == {("t", 0): ErrorCode.none}
        stale = await h.call(_commit("g", [("t", 0, 9, None)], member, generation + 1))
        assert _errors(stale) == {("t", 0): ErrorCode.illegal_generation}
        simple = await h.call(_commit("g", [("t", 0, 9, None)]))  # the group has members
        assert _errors(simple) == {("t", 0): ErrorCode.unknown_member_id}
        assert h.node.committed_offsets("g")[("t", 0)].offset == 3

    run_node(tmp_path, body)


def test_offset_commit_refuses_per_partition_and_per_group(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        mixed = await h.call(
            _commit("g", [("t", 0, 1, None), ("t", 9, 1, None), ("nope", 0, 1, None)])
        )
        assert _errors(mixed) == {
            ("t", 0): ErrorCode.none,  # the rest are still stored
            ("t", 9): ErrorCode.unknown_topic_or_partition,
            ("nope", 0): ErrorCode.unknown_topic_or_partition,
        }
        too_large = await h.call(_commit("g", [("t", 0, 2, "x" * 4097)]))
        assert _errors(too_large) == {("t", 0): ErrorCode.offset_metadata_too_large}
        nameless = await h.call(_commit("", [("t", 0, 2, None)]))
        assert _errors(nameless) == {("t", 0): ErrorCode.invalid_group_id}
        assert {k: c.offset for k, c in h.node.committed_offsets("g").items()} == {("t", 0): 1}

    run_node(tmp_path, body)


def test_offset_fetch_of_nothing_committed_is_minus_one_and_fenced_is_not_coordinator(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        assert _fetched_v8(await h.call(_fetch_v8("unknown", {"t": (0,)}))) == (
            ErrorCode.none,
            {("t", 0): (-1, "")},
        )
        h.node.store.step_down("unit test: another broker took over")
        code, _ = _fetched_v8(await h.call(_fetch_v8("unknown", {"t": (0,)})))
        assert code == ErrorCode.not_coordinator

    run_node(tmp_path, body)


def _offset_delete(group: str, topic: str, *partitions: int) -> Any:
    parts = tuple(
        request(OFFSET_DELETE, 0, "OffsetDeleteRequestPartition", partition_index=p)
        for p in partitions
    )
    return request(
        OFFSET_DELETE,
        0,
        "OffsetDeleteRequest",
        group_id=group,
        topics=(
            request(OFFSET_DELETE, 0, "OffsetDeleteRequestTopic", name=topic, partitions=parts),
        ),
    )


def test_offset_delete_drops_the_offsets_of_a_group_without_members(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        await h.call(_commit("g", [("t", 0, 5, None), ("t", 1, 6, None)]))
        response = await h.call(_offset_delete("g", "t", 0, 7))
        assert response.error_code == ErrorCode.none
        assert _errors(response) == {
            ("t", 0): ErrorCode.none,
            ("t", 7): ErrorCode.unknown_topic_or_partition,
        }
        assert list(h.node.committed_offsets("g")) == [("t", 1)]

    run_node(tmp_path, body)


def test_offset_delete_refuses_a_group_with_members_and_an_unknown_group(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        member, generation = await stable_member(h, "g")
        await h.call(_commit("g", [("t", 0, 5, None)], member, generation))
        subscribed = await h.call(_offset_delete("g", "t", 0))
        assert _errors(subscribed) == {("t", 0): ErrorCode.group_subscribed_to_topic}
        unknown = await h.call(_offset_delete("nobody", "t", 0))
        assert (unknown.error_code, unknown.topics) == (ErrorCode.group_id_not_found, ())
        assert h.node.committed_offsets("g")[("t", 0)].offset == 5

    run_node(tmp_path, body)


def _delete_groups(*groups: str) -> Any:
    return request(DELETE_GROUPS, 2, "DeleteGroupsRequest", groups_names=groups)


def test_delete_groups_deletes_an_empty_group_and_its_offsets(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await h.create_topic("t")
        member, generation = await stable_member(h, "left")
        await h.call(_commit("left", [("t", 0, 5, None)], member, generation))
        leave = request(13, 0, "LeaveGroupRequest", group_id="left", member_id=member)
        assert (await h.call(leave)).error_code == ErrorCode.none
        await h.call(_commit("offsets-only", [("t", 0, 1, None)]))
        response = await h.call(_delete_groups("left", "offsets-only"))
        assert {r.group_id: r.error_code for r in response.results} == {
            "left": ErrorCode.none,
            "offsets-only": ErrorCode.none,
        }
        assert h.node.live_group("left") is None
        assert h.node.committed_offsets("left") == {}
        assert h.node.committed_offsets("offsets-only") == {}

    run_node(tmp_path, body)


def test_delete_groups_refuses_a_group_with_members_and_an_unknown_group(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        await stable_member(h, "busy")
        response = await h.call(_delete_groups("busy", "nobody"))
        assert {r.group_id: r.error_code for r in response.results} == {
            "busy": ErrorCode.non_empty_group,
            "nobody": ErrorCode.group_id_not_found,
        }
        assert h.node.live_group("busy") is not None

    run_node(tmp_path, body)


def test_require_stable_holds_offsets_a_transaction_staged_until_its_marker(
    tmp_path: Path,
) -> None:
    pid, epoch = 4000, 0

    def fetch(require_stable: bool) -> Any:
        wanted = request(
            OFFSET_FETCH, 8, "OffsetFetchRequestTopics", name="t", partition_indexes=(0, 1)
        )
        group = request(OFFSET_FETCH, 8, "OffsetFetchRequestGroup", group_id="g", topics=(wanted,))
        return request(
            OFFSET_FETCH, 8, "OffsetFetchRequest", groups=(group,), require_stable=require_stable
        )

    def answers(response: Any) -> dict[int, tuple[int, int]]:
        (group,) = response.groups
        return {
            p.partition_index: (p.committed_offset, p.error_code)
            for p in group.topics[0].partitions
        }

    async def body(h: NodeHarness) -> None:
        await h.create_topic("t", 2)
        await h.call(_commit("g", [("t", 0, 41, None), ("t", 1, 7, None)]))
        await h.node.stage_txn_offsets("g", pid, epoch, [("t", 0, 50, -1, None)])
        # A read_committed client (librdkafka, Java) asks for stable offsets: the staged
        # partition is retriable UNSTABLE_OFFSET_COMMIT, the other answers as it stands.
        assert answers(await h.call(fetch(True))) == {
            0: (-1, ErrorCode.unstable_offset_commit),
            1: (7, ErrorCode.none),
        }
        assert answers(await h.call(fetch(False))) == {0: (41, 0), 1: (7, 0)}
        await h.node.store.txns.end_offsets(pid, epoch, ["g"], True)  # the COMMIT marker
        assert answers(await h.call(fetch(True))) == {0: (50, 0), 1: (7, 0)}
        # A staging that raced its own abort has no marker coming: once it is older
        # than transaction.max.timeout.ms it no longer holds readers.
        await h.node.stage_txn_offsets("g", pid, epoch, [("t", 1, 9, -1, None)])
        assert answers(await h.call(fetch(True)))[1] == (-1, ErrorCode.unstable_offset_commit)
        h.node.store.txns.pending_offsets("g")[pid]["ts"] -= 900_001
        assert answers(await h.call(fetch(True))) == {0: (50, 0), 1: (7, 0)}

    run_node(tmp_path, body)

"""Static membership (KIP-345) and the cooperative-sticky assignor, with librdkafka.

A static member (group.instance.id) that closes and comes back within its session
timeout gets its old partitions back, and the other member is not rebalanced: neither
of its rebalance callbacks runs. With partition.assignment.strategy=cooperative-sticky
the members hand over only the partitions that move (incremental assign/revoke): a
second member takes half, and when it leaves the first gets them back without ever
giving up its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.broker_process import BrokerProcess
from tests.integration.group_member import GroupMember, poll_until
from tests.integration.test_clients import create_topic, topic_name

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("membership") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def split(members: list[GroupMember]) -> bool:
    owned = [p for m in members for p in m.assigned]
    return all(m.assigned for m in members) and sorted(owned) == list(range(PARTITIONS))


def test_a_static_member_that_comes_back_keeps_its_partitions_without_a_rebalance(
    broker: BrokerProcess,
) -> None:
    topic, group = topic_name("static"), f"static-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, partitions=PARTITIONS)
    static = GroupMember(
        broker.bootstrap, group, topic, "static", **{"group.instance.id": "static-1"}
    )
    other = GroupMember(broker.bootstrap, group, topic, "other")
    members = [static, other]
    try:
        poll_until(members, lambda: split(members), "two members to share the partitions")
        before, others = set(static.assigned), set(other.assigned)
        others_callbacks = list(other.callbacks)
        static.consumer.close()  # a static member sends no LeaveGroup on close
        back = GroupMember(
            broker.bootstrap, group, topic, "static-again", **{"group.instance.id": "static-1"}
        )
        members = [back, other]
        poll_until(members, lambda: bool(back.assigned), "the static member to come back")
        assert back.assigned == before
        assert back.callbacks == [("assign", sorted(before))]
        assert other.assigned == others
        assert other.callbacks == others_callbacks, "the other member was rebalanced"
    finally:
        for m in members:
            m.consumer.close()
    assert "handler failed" not in broker.output()


def test_cooperative_sticky_members_split_and_hand_back_only_what_moves(
    broker: BrokerProcess,
) -> None:
    topic, group = topic_name("coop"), f"coop-{uuid.uuid4().hex[:8]}"
    create_topic(broker, topic, partitions=PARTITIONS)
    config = {"partition.assignment.strategy": "cooperative-sticky"}
    first = GroupMember(broker.bootstrap, group, topic, "first", **config)
    poll_until([first], lambda: first.assigned == set(range(PARTITIONS)), "the first member")
    second = GroupMember(broker.bootstrap, group, topic, "second", **config)
    members = [first, second]
    try:
        poll_until(members, lambda: split(members), "two cooperative members to split")
        assert sorted(len(m.assigned) for m in members) == [2, 2]
        moved = [p for kind, ps in first.callbacks if kind == "revoke" for p in ps]
        assert sorted(moved) == sorted(second.assigned), first.callbacks  # only what moved
        kept = set(first.assigned)
        second.consumer.close()  # LeaveGroup
        members = [first]
        poll_until(members, lambda: first.assigned == set(range(PARTITIONS)), "the takeover")
        assert kept <= first.assigned
        revoked = [p for kind, ps in first.callbacks if kind == "revoke" for p in ps]
        assert not set(revoked) & kept, f"sticky partitions were revoked: {first.callbacks}"
    finally:
        for m in members:
            m.consumer.close()
    assert "handler failed" not in broker.output()


def test_initial_rebalance_delay_lets_members_that_start_together_share_one_generation(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With --group-initial-rebalance-delay-ms, a new group waits for the members that
    start together, so nobody first gets every partition and then loses half: each
    member's first and only callback is its final share."""
    data = tmp_path_factory.mktemp("delay") / "data"
    with BrokerProcess(data, args=["--group-initial-rebalance-delay-ms", "2000"]) as delayed:
        topic, group = topic_name("delay"), f"delay-{uuid.uuid4().hex[:8]}"
        create_topic(delayed, topic, partitions=PARTITIONS)
        first = GroupMember(delayed.bootstrap, group, topic, "m0")
        members = [first]
        try:
            # Half a second of the first member alone: without the delay it would own
            # every partition by now (its join completes at once) and later lose half.
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                first.poll()
            assert first.callbacks == [], "the first rebalance did not wait"
            members.append(GroupMember(delayed.bootstrap, group, topic, "m1"))
            poll_until(members, lambda: split(members), "two members to share the partitions")
            for m in members:
                assert [kind for kind, _ in m.callbacks] == ["assign"], m.callbacks
        finally:
            for m in members:
                m.consumer.close()

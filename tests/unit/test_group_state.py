"""The classic group state machine (`broker/groups/state.py`), driven without sockets or clocks."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog.broker.groups.events import (
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
    ProtocolEntry,
    Sync,
    SyncResponse,
    Tick,
    Unload,
    Wakeup,
)
from tidelog.broker.groups.protocol_vote import select_protocol
from tidelog.broker.groups.queries import (
    GroupListing,
    answer_missing_group,
    creates_group,
    describe,
    listing,
    state_name,
    validate_commit,
)
from tidelog.broker.groups.state import Group, GroupConfig, GroupState, handle, next_deadline
from tidelog.protocol.errors import ErrorCode

RANGE: tuple[ProtocolEntry, ...] = (("range", b"range-meta"),)
ROUNDROBIN: tuple[ProtocolEntry, ...] = (("roundrobin", b"rr-meta"),)
STICKY_OR_RANGE: tuple[ProtocolEntry, ...] = (("cooperative-sticky", b"cs"), ("range", b"r2"))
RANGE_OR_RR: tuple[ProtocolEntry, ...] = (("range", b"range-meta"), ("roundrobin", b"rr-meta"))
SESSION_MS = 10_000
REBALANCE_MS = 30_000
T = TypeVar("T")


def _config(
    *,
    initial_rebalance_delay_ms: int = 0,
    max_group_size: int | None = None,
    new_member_join_timeout_ms: int = 300_000,
) -> GroupConfig:
    """Member ids are "<client id>-<n>", n counting from 1: deterministic."""
    ids = itertools.count(1)
    return GroupConfig(
        initial_rebalance_delay_ms=initial_rebalance_delay_ms,
        max_group_size=max_group_size,
        new_member_join_timeout_ms=new_member_join_timeout_ms,
        new_member_id=lambda prefix: f"{prefix}-{next(ids)}",
    )


class Coordinator:
    """One group, a clock the test moves by hand, and request tokens."""

    def __init__(self, config: GroupConfig | None = None) -> None:
        self.group = Group("g")
        self.config = config or _config()
        self.now = 0
        self._tokens = itertools.count(1)

    def state(self) -> GroupState:
        """Read through a call: mypy would otherwise keep a narrowed `group.state`."""
        return self.group.state

    def run(self, event: Event) -> list[Effect]:
        effects = handle(self.group, event, self.now, self.config)
        assert sum(isinstance(e, Wakeup) for e in effects) == 1
        assert isinstance(effects[-1], Wakeup)
        return effects

    def join(
        self,
        member_id: str = "",
        *,
        client: str = "c",
        instance: str | None = None,
        protocols: tuple[ProtocolEntry, ...] = RANGE,
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
    ) -> tuple[int, list[Effect]]:
        token = next(self._tokens)
        event = Join(
            token,
            member_id,
            instance,
            client,
            "/10.0.0.1",
            session_ms,
            rebalance_ms,
            protocol_type,
            protocols,
        )
        return token, self.run(event)

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: Mapping[str, bytes] | None = None,
        *,
        instance: str | None = None,
        protocol_name: str | None = None,
    ) -> tuple[int, list[Effect]]:
        token = next(self._tokens)
        event = Sync(
            token, member_id, generation, instance, "consumer", protocol_name, assignments or {}
        )
        return token, self.run(event)

    def heartbeat(
        self, member_id: str, generation: int, instance: str | None = None
    ) -> HeartbeatResponse:
        token = next(self._tokens)
        return _answer(
            self.run(Heartbeat(token, member_id, generation, instance)), token, HeartbeatResponse
        )

    def leave(self, *members: tuple[str, str | None]) -> LeaveResponse:
        token = next(self._tokens)
        return _answer(self.run(Leave(token, members)), token, LeaveResponse)

    def tick(self, at_ms: int) -> list[Effect]:
        self.now = at_ms
        return self.run(Tick())

    def member_id_for(self, client: str) -> str:
        """KIP-394: the first join gets MEMBER_ID_REQUIRED and an id to rejoin with."""
        token, effects = self.join(client=client)
        required = _answer(effects, token, JoinResponse)
        assert required.error is ErrorCode.member_id_required
        return required.member_id

    def joined_group(self, *clients: str, rebalance_ms: int = REBALANCE_MS) -> list[str]:
        """Everyone joined one generation (CompletingRebalance); members rejoin as told."""
        ids = [self.member_id_for(client) for client in clients]
        for member_id, client in zip(ids, clients, strict=True):
            self.join(member_id, client=client, rebalance_ms=rebalance_ms)
        while self.state() is GroupState.PREPARING_REBALANCE:
            for member_id, client in zip(ids, clients, strict=True):
                if not self.group.members[member_id].awaiting_join:
                    self.join(member_id, client=client, rebalance_ms=rebalance_ms)
        assert self.state() is GroupState.COMPLETING_REBALANCE
        return ids

    def stable_group(self, *clients: str, rebalance_ms: int = REBALANCE_MS) -> list[str]:
        """Joined, the leader assigned b"<member id>" to each, everyone synced: Stable."""
        ids = self.joined_group(*clients, rebalance_ms=rebalance_ms)
        generation, leader = self.group.generation_id, self.group.leader_id
        assert leader is not None
        self.sync(leader, generation, {m: m.encode() for m in ids})
        for member_id in ids:
            if member_id != leader:
                self.sync(member_id, generation)
        assert self.state() is GroupState.STABLE
        return ids


def _answers(effects: list[Effect], token: int) -> list[Effect]:
    return [e for e in effects if not isinstance(e, Wakeup) and e.token == token]


def _answer(effects: list[Effect], token: int, kind: type[T]) -> T:
    found = _answers(effects, token)
    assert len(found) == 1, f"expected one answer to token {token}, got {found}"
    assert isinstance(found[0], kind)
    return found[0]


def _wakeup(effects: list[Effect]) -> int | None:
    last = effects[-1]
    assert isinstance(last, Wakeup)
    return last.at_ms


# -- joining, syncing, the happy paths ------------------------------------------------------


def test_single_member_gets_an_id_then_leads_generation_one_and_syncs_to_stable() -> None:
    c = Coordinator()
    token, effects = c.join(client="solo")
    required = _answer(effects, token, JoinResponse)
    assert required.error is ErrorCode.member_id_required
    assert required.member_id == "solo-1"
    assert c.state() is GroupState.EMPTY and "solo-1" in c.group.pending_members

    token, effects = c.join("solo-1", client="solo")
    joined = _answer(effects, token, JoinResponse)
    assert joined.error is ErrorCode.none
    assert (joined.generation_id, joined.member_id, joined.leader_id) == (1, "solo-1", "solo-1")
    assert (joined.protocol_type, joined.protocol_name) == ("consumer", "range")
    assert joined.members == (JoinedMember("solo-1", None, b"range-meta"),)
    assert c.state() is GroupState.COMPLETING_REBALANCE

    token, effects = c.sync("solo-1", 1, {"solo-1": b"p0,p1"})
    synced = _answer(effects, token, SyncResponse)
    assert (synced.error, synced.assignment) == (ErrorCode.none, b"p0,p1")
    assert (synced.protocol_type, synced.protocol_name) == ("consumer", "range")
    assert c.state() is GroupState.STABLE


def test_members_joining_within_the_initial_delay_form_one_generation() -> None:
    c = Coordinator(_config(initial_rebalance_delay_ms=3_000))
    ids: dict[str, str] = {}
    joins: dict[str, int] = {}
    for at, client in [(0, "a"), (1_000, "b"), (2_000, "c")]:
        c.now = at
        ids[client] = c.member_id_for(client)
        joins[client], effects = c.join(ids[client], client=client, protocols=STICKY_OR_RANGE)
        assert not [e for e in effects if isinstance(e, JoinResponse)]  # parked
    # Members kept arriving during the first delay: it is extended once more.
    effects = c.tick(3_000)
    assert not [e for e in effects if isinstance(e, JoinResponse)]
    assert _wakeup(effects) == 6_000

    effects = c.tick(6_000)
    answers = {client: _answer(effects, joins[client], JoinResponse) for client in "abc"}
    assert {a.generation_id for a in answers.values()} == {1}
    assert {a.leader_id for a in answers.values()} == {ids["a"]}
    assert {a.protocol_name for a in answers.values()} == {"cooperative-sticky"}
    assert answers["a"].members == tuple(JoinedMember(ids[x], None, b"cs") for x in "abc")
    assert answers["b"].members == answers["c"].members == ()

    b_sync, effects = c.sync(ids["b"], 1)
    assert _answers(effects, b_sync) == []  # followers wait for the leader
    c_sync, effects = c.sync(ids["c"], 1)
    assert _answers(effects, c_sync) == []
    a_sync, effects = c.sync(ids["a"], 1, {ids[x]: f"for-{x}".encode() for x in "abc"})
    for client, token in [("a", a_sync), ("b", b_sync), ("c", c_sync)]:
        assert _answer(effects, token, SyncResponse).assignment == f"for-{client}".encode()
    assert c.state() is GroupState.STABLE


def test_initial_delay_extensions_stop_at_the_rebalance_timeout() -> None:
    c = Coordinator(_config(initial_rebalance_delay_ms=3_000))
    a = c.member_id_for("a")
    a_join, _ = c.join(a, client="a", rebalance_ms=5_000)
    c.now = 1_000
    c.join(c.member_id_for("b"), client="b", rebalance_ms=5_000)
    assert _wakeup(c.tick(3_000)) == 5_000  # extended, but only up to 5 s in total
    c.now = 4_000
    c.join(c.member_id_for("late"), client="late", rebalance_ms=5_000)
    effects = c.tick(5_000)
    assert _answer(effects, a_join, JoinResponse).generation_id == 1
    assert len(c.group.members) == 3


def test_protocol_vote_picks_the_protocol_every_member_supports() -> None:
    c = Coordinator()
    a, b = c.member_id_for("a"), c.member_id_for("b")
    _, effects = c.join(a, client="a", protocols=STICKY_OR_RANGE)  # alone: generation 1
    assert c.group.protocol_name == "cooperative-sticky"
    c.sync(a, 1)
    c.join(b, client="b", protocols=RANGE)
    token, effects = c.join(a, client="a", protocols=STICKY_OR_RANGE)
    answer = _answer(effects, token, JoinResponse)
    assert answer.protocol_name == "range" and answer.generation_id == 2
    assert answer.members == (JoinedMember(a, None, b"r2"), JoinedMember(b, None, b"range-meta"))


def test_vote_counts_first_choices_and_breaks_ties_by_rank_then_name() -> None:
    sticky_first = ["cooperative-sticky", "range"]
    range_first = ["range", "cooperative-sticky"]
    assert select_protocol([sticky_first, sticky_first, range_first]) == "cooperative-sticky"
    assert select_protocol([range_first, range_first, sticky_first]) == "range"
    assert select_protocol([["x", "b", "a"], ["y", "a", "b"], ["a", "b"]]) == "a"  # 2 votes
    # One vote each: "b" ranks best over all lists (0+1+1 < 2+2+0 < 1+0+2).
    assert select_protocol([["b", "c", "a"], ["c", "b", "a"], ["a", "b", "c"]]) == "b"
    assert select_protocol([["b", "a"], ["a", "b"]]) == "a"  # tied on votes and rank
    with pytest.raises(ValueError, match="no protocol"):
        select_protocol([["range"], ["roundrobin"]])


def test_member_sharing_no_protocol_or_type_is_inconsistent() -> None:
    c = Coordinator()
    c.stable_group("a")
    attempts = [
        c.join(client="x", protocols=ROUNDROBIN),
        c.join(client="x", protocol_type="connect"),
        c.join(client="x", protocols=()),
    ]
    for token, effects in attempts:
        assert _answer(effects, token, JoinResponse).error is ErrorCode.inconsistent_group_protocol
    assert len(c.group.members) == 1 and not c.group.pending_members


def test_session_timeout_outside_the_broker_limits_is_rejected() -> None:
    c = Coordinator()
    for session_ms in (5_999, 1_800_001):
        token, effects = c.join(client="a", session_ms=session_ms)
        assert _answer(effects, token, JoinResponse).error is ErrorCode.invalid_session_timeout
    assert not c.group.pending_members


def test_group_max_size_rejects_a_new_member() -> None:
    c = Coordinator(_config(max_group_size=2))
    c.stable_group("a", "b")
    token, effects = c.join(client="c")
    assert _answer(effects, token, JoinResponse).error is ErrorCode.group_max_size_reached
    assert c.state() is GroupState.STABLE and len(c.group.members) == 2


def test_while_preparing_the_size_limit_counts_rejoined_members_and_sheds_late_ones() -> None:
    c = Coordinator(_config(max_group_size=2))
    a, b = c.stable_group("a", "b")
    c.join(a, client="a")  # rebalance: one parked join so far
    newcomer = c.member_id_for("c")  # room for a second
    c.join(newcomer, client="c")
    token, effects = c.join(b, client="b")  # b rejoins after the limit was reached
    assert _answer(effects, token, JoinResponse).error is ErrorCode.group_max_size_reached
    assert list(c.group.members) == [a, newcomer]
    assert c.state() is GroupState.COMPLETING_REBALANCE


# -- rebalances ---------------------------------------------------------------------------


def test_leaving_member_makes_the_others_rejoin_a_generation_without_it() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    gen = c.group.generation_id
    left = c.leave((b, None))
    assert left.error is ErrorCode.none and left.members == (LeftMember(b, None, ErrorCode.none),)
    assert c.heartbeat(a, gen).error is ErrorCode.rebalance_in_progress
    token, effects = c.join(a, client="a")
    answer = _answer(effects, token, JoinResponse)
    assert answer.generation_id == gen + 1 and [m.member_id for m in answer.members] == [a]
    assert c.heartbeat(b, gen).error is ErrorCode.unknown_member_id


def test_expired_session_removes_the_member_and_triggers_a_rebalance() -> None:
    c = Coordinator()
    a, _ = c.stable_group("a", "b")
    gen = c.group.generation_id
    c.now = 8_000
    assert c.heartbeat(a, gen).error is ErrorCode.none
    assert _wakeup(c.tick(9_999)) == 10_000  # b's session, counted from its sync at 0
    c.tick(10_000)
    assert list(c.group.members) == [a] and c.state() is GroupState.PREPARING_REBALANCE
    assert c.heartbeat(a, gen).error is ErrorCode.rebalance_in_progress
    token, effects = c.join(a, client="a")
    assert _answer(effects, token, JoinResponse).generation_id == gen + 1


def test_last_member_expiring_empties_the_group_in_a_new_generation() -> None:
    c = Coordinator()
    c.stable_group("a")
    c.tick(SESSION_MS)
    g = c.group
    assert (g.state, g.generation_id, g.members, g.leader_id) == (GroupState.EMPTY, 2, {}, None)
    assert g.protocol_name is None and _wakeup(c.tick(SESSION_MS + 1)) is None


def test_rebalance_timeout_drops_a_member_that_never_rejoined() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    gen = c.group.generation_id
    c.now = 1_000
    token, _ = c.join(a, client="a")  # the leader rejoining starts a rebalance
    assert c.group.join_deadline_ms == 1_000 + REBALANCE_MS
    for at in (5_000, 14_000, 23_000):  # b stays alive but never rejoins
        c.now = at
        assert c.heartbeat(b, gen).error is ErrorCode.rebalance_in_progress
    effects = c.tick(1_000 + REBALANCE_MS)
    answer = _answer(effects, token, JoinResponse)
    assert answer.generation_id == gen + 1 and [m.member_id for m in answer.members] == [a]
    assert c.heartbeat(b, gen).error is ErrorCode.unknown_member_id


def test_leader_leaving_hands_leadership_to_a_member_that_rejoined() -> None:
    c = Coordinator()
    a, _, d = c.stable_group("a", "b", "d")
    assert c.group.leader_id == a
    c.leave((a, None))
    token, _ = c.join(d, client="d")
    effects = c.tick(REBALANCE_MS)  # b never rejoins
    answer = _answer(effects, token, JoinResponse)
    assert answer.leader_id == d and [m.member_id for m in answer.members] == [d]


def test_follower_with_same_metadata_in_stable_gets_the_current_generation() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    gen = c.group.generation_id
    token, effects = c.join(b, client="b")
    answer = _answer(effects, token, JoinResponse)
    assert (answer.error, answer.generation_id, answer.leader_id) == (ErrorCode.none, gen, a)
    assert answer.members == () and c.state() is GroupState.STABLE
    token, effects = c.sync(b, gen)
    assert _answer(effects, token, SyncResponse).assignment == b.encode()


def test_a_sync_in_stable_counts_as_a_heartbeat() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    gen = c.group.generation_id
    c.now = 8_000
    c.heartbeat(a, gen)
    c.sync(b, gen)
    c.tick(15_000)
    assert list(c.group.members) == [a, b] and c.state() is GroupState.STABLE


def test_changed_metadata_or_leader_rejoin_in_stable_starts_a_rebalance() -> None:
    for rejoin_as_leader in (True, False):
        c = Coordinator()
        a, b = c.stable_group("a", "b")
        if rejoin_as_leader:
            c.join(a, client="a")
        else:
            c.join(b, client="b", protocols=(("range", b"new-subscription"),))
        assert c.state() is GroupState.PREPARING_REBALANCE


def test_heartbeat_says_rebalance_only_while_preparing() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    gen = c.group.generation_id
    c.join(a, client="a")
    assert c.heartbeat(b, gen).error is ErrorCode.rebalance_in_progress
    c.join(b, client="b")
    assert c.state() is GroupState.COMPLETING_REBALANCE
    # Kafka 3+: members heartbeat while they wait for the leader's assignment.
    assert c.heartbeat(b, gen + 1).error is ErrorCode.none


def test_sync_during_a_rebalance_is_told_to_rejoin() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    gen = c.group.generation_id
    c.join(a, client="a")
    token, effects = c.sync(b, gen)
    assert _answer(effects, token, SyncResponse).error is ErrorCode.rebalance_in_progress

    c.join(b, client="b")
    parked, _ = c.sync(b, gen + 1)
    _, effects = c.join(c.member_id_for("newcomer"), client="newcomer")
    answer = _answer(effects, parked, SyncResponse)
    assert (answer.error, answer.assignment) == (ErrorCode.rebalance_in_progress, b"")


def test_member_the_leader_did_not_assign_gets_an_empty_assignment() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    c.join(a, client="a")
    c.join(b, client="b")
    gen = c.group.generation_id
    c.sync(a, gen, {a: b"everything"})
    token, effects = c.sync(b, gen)
    assert _answer(effects, token, SyncResponse) == SyncResponse(
        token, ErrorCode.none, "consumer", "range", b""
    )


def test_member_that_never_syncs_is_removed_after_the_rebalance_timeout() -> None:
    c = Coordinator()
    a, b = c.joined_group("a", "b", rebalance_ms=5_000)
    c.sync(a, c.group.generation_id, {a: b"x", b: b"y"})
    assert c.state() is GroupState.STABLE and c.group.pending_sync == {b}
    assert c.group.sync_deadline_ms == 5_000
    c.tick(5_000)  # before either session (10 s) runs out
    assert b not in c.group.members and c.state() is GroupState.PREPARING_REBALANCE


def test_rebalance_waits_for_ids_handed_out_with_member_id_required() -> None:
    c = Coordinator()
    (a,) = c.stable_group("a")
    pending = c.member_id_for("b")
    assert c.state() is GroupState.STABLE  # a handed-out id alone changes nothing
    token, effects = c.join(a, client="a")
    assert _answers(effects, token) == []
    _, effects = c.join(pending, client="b")
    assert _answer(effects, token, JoinResponse).generation_id == 2


def test_unanswered_member_id_expires_after_the_session_timeout() -> None:
    c = Coordinator()
    pending = c.member_id_for("a")
    assert _wakeup(c.tick(1)) == SESSION_MS
    c.tick(SESSION_MS)
    assert not c.group.pending_members
    token, effects = c.join(pending, client="a")
    assert _answer(effects, token, JoinResponse).error is ErrorCode.unknown_member_id


def test_a_second_join_from_the_same_member_releases_the_first() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    first, _ = c.join(a, client="a")
    second, effects = c.join(a, client="a")
    assert _answer(effects, first, JoinResponse).error is ErrorCode.rebalance_in_progress
    assert _answers(effects, second) == []
    _, effects = c.join(b, client="b")
    assert _answer(effects, second, JoinResponse).error is ErrorCode.none


# -- errors -------------------------------------------------------------------------------


def test_stale_generation_is_an_illegal_generation() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    stale = c.group.generation_id
    c.join(a, client="a")
    c.join(b, client="b")
    assert c.group.generation_id == stale + 1
    assert c.heartbeat(b, stale).error is ErrorCode.illegal_generation
    token, effects = c.sync(b, stale)
    assert _answer(effects, token, SyncResponse).error is ErrorCode.illegal_generation
    assert validate_commit(c.group, b, None, stale) is ErrorCode.illegal_generation


def test_unknown_member_id_is_rejected_by_every_api() -> None:
    c = Coordinator()
    c.stable_group("a")
    token, effects = c.join("ghost", client="ghost")
    assert _answer(effects, token, JoinResponse).error is ErrorCode.unknown_member_id
    assert c.heartbeat("ghost", 1).error is ErrorCode.unknown_member_id
    token, effects = c.sync("ghost", 1)
    assert _answer(effects, token, SyncResponse).error is ErrorCode.unknown_member_id
    assert c.leave(("ghost", None)).members[0].error is ErrorCode.unknown_member_id
    assert c.state() is GroupState.STABLE


def test_sync_naming_another_protocol_is_inconsistent() -> None:
    c = Coordinator()
    (a,) = c.stable_group("a")
    token, effects = c.sync(a, 1, protocol_name="roundrobin")
    assert _answer(effects, token, SyncResponse).error is ErrorCode.inconsistent_group_protocol


# -- static membership --------------------------------------------------------------------


def _static_group(c: Coordinator) -> tuple[str, str]:
    """Static leader "i1" (no MEMBER_ID_REQUIRED for it) and a dynamic follower, Stable."""
    token, effects = c.join(client="s", instance="i1", protocols=RANGE_OR_RR)
    static_id = _answer(effects, token, JoinResponse).member_id
    c.sync(static_id, 1, {static_id: b"static-parts"})
    dynamic_id = c.member_id_for("d")
    c.join(dynamic_id, client="d", protocols=RANGE_OR_RR)
    c.join(static_id, client="s", instance="i1", protocols=RANGE_OR_RR)
    gen = c.group.generation_id
    c.sync(static_id, gen, {static_id: b"static-parts", dynamic_id: b"d-parts"}, instance="i1")
    c.sync(dynamic_id, gen)
    assert c.state() is GroupState.STABLE and c.group.leader_id == static_id
    return static_id, dynamic_id


def test_static_member_restart_fences_the_old_id_without_a_rebalance() -> None:
    c = Coordinator()
    old_id, dynamic_id = _static_group(c)
    gen = c.group.generation_id
    token, effects = c.join(client="s", instance="i1", protocols=RANGE_OR_RR)
    answer = _answer(effects, token, JoinResponse)
    new_id = answer.member_id
    assert answer.error is ErrorCode.none and new_id not in (old_id, "")
    assert answer.generation_id == gen and c.state() is GroupState.STABLE
    # The old leader id comes back, so the restarted leader does not try to assign.
    assert answer.leader_id == old_id and c.group.leader_id == new_id
    assert c.heartbeat(old_id, gen, "i1").error is ErrorCode.fenced_instance_id
    assert c.heartbeat(dynamic_id, gen).error is ErrorCode.none
    token, effects = c.sync(new_id, gen, instance="i1")
    assert _answer(effects, token, SyncResponse).assignment == b"static-parts"


def test_static_member_restart_rebalances_only_when_the_chosen_protocol_changes() -> None:
    c = Coordinator()
    _static_group(c)
    gen = c.group.generation_id
    c.join(client="s", instance="i1", protocols=(("range", b"changed"), ("roundrobin", b"")))
    assert c.state() is GroupState.STABLE  # new metadata, same protocol: no rebalance
    c.join(client="s", instance="i1", protocols=ROUNDROBIN)
    assert c.state() is GroupState.PREPARING_REBALANCE
    assert c.group.generation_id == gen


def test_static_member_restart_during_completing_rebalance_starts_over() -> None:
    c = Coordinator()
    old_id, dynamic_id = _static_group(c)
    c.join(old_id, client="s", instance="i1", protocols=RANGE_OR_RR)
    c.join(dynamic_id, client="d", protocols=RANGE_OR_RR)
    assert c.state() is GroupState.COMPLETING_REBALANCE
    parked, _ = c.sync(dynamic_id, c.group.generation_id)
    c.join(client="s", instance="i1", protocols=RANGE_OR_RR)
    assert c.state() is GroupState.PREPARING_REBALANCE
    token, effects = c.sync(dynamic_id, c.group.generation_id)
    assert _answer(effects, token, SyncResponse).error is ErrorCode.rebalance_in_progress
    del parked


def test_rebalance_waits_while_only_static_members_that_did_not_rejoin_remain() -> None:
    c = Coordinator()
    for instance in ("i1", "i2"):
        c.join(client="s", instance=instance, rebalance_ms=5_000)
    for member_id, member in list(c.group.members.items()):  # complete the rebalance
        c.join(member_id, client="s", instance=member.group_instance_id, rebalance_ms=5_000)
    gen = c.group.generation_id
    d = c.member_id_for("d")
    c.join(d, client="d", rebalance_ms=5_000)
    c.leave((d, None))
    c.tick(5_000)  # nobody rejoined: no new generation without any rejoined member
    assert c.state() is GroupState.PREPARING_REBALANCE and c.group.generation_id == gen
    assert c.group.join_deadline_ms == 10_000 and len(c.group.members) == 2


def test_a_static_leader_missing_a_rebalance_stays_but_hands_over_leadership() -> None:
    c = Coordinator()
    static_id, dynamic_id = _static_group(c)
    gen = c.group.generation_id
    token, _ = c.join(dynamic_id, client="d", protocols=(("range", b"new"), ("roundrobin", b"")))
    for at in (9_000, 18_000, 27_000):  # alive, but it does not rejoin in time
        c.now = at
        assert c.heartbeat(static_id, gen, "i1").error is ErrorCode.rebalance_in_progress
    effects = c.tick(REBALANCE_MS)
    answer = _answer(effects, token, JoinResponse)
    assert answer.leader_id == dynamic_id and answer.generation_id == gen + 1
    assert answer.members == (
        JoinedMember(static_id, "i1", b"range-meta"),
        JoinedMember(dynamic_id, None, b"new"),
    )


def test_a_restarted_static_leader_keeps_leading_the_next_rebalance() -> None:
    c = Coordinator()
    _, dynamic_id = _static_group(c)
    token, effects = c.join(client="s", instance="i1", protocols=RANGE_OR_RR)
    new_id = _answer(effects, token, JoinResponse).member_id
    assert list(c.group.members) == [dynamic_id, new_id]
    c.join(new_id, client="s", instance="i1", protocols=RANGE_OR_RR)  # a leader's rejoin
    token, effects = c.join(dynamic_id, client="d", protocols=RANGE_OR_RR)
    assert _answer(effects, token, JoinResponse).leader_id == new_id


def test_a_restarted_static_member_still_owes_its_sync() -> None:
    c = Coordinator()
    (d,) = c.stable_group("d", rebalance_ms=5_000)
    c.join(client="s", instance="i1", rebalance_ms=5_000)
    c.join(d, client="d", rebalance_ms=5_000)
    c.sync(d, c.group.generation_id, {})  # the leader syncs; the static follower not yet
    token, effects = c.join(client="s", instance="i1", rebalance_ms=5_000)
    new_id = _answer(effects, token, JoinResponse).member_id
    assert c.group.pending_sync == {new_id} and c.state() is GroupState.STABLE
    c.tick(5_000)  # the sync deadline, before any session runs out
    assert list(c.group.members) == [d] and c.state() is GroupState.PREPARING_REBALANCE


def test_a_static_member_cannot_claim_an_id_handed_out_to_a_dynamic_one() -> None:
    c = Coordinator()
    static_id, _ = _static_group(c)
    pending = c.member_id_for("x")
    token, effects = c.join(pending, client="x", instance="i1", protocols=RANGE_OR_RR)
    assert _answer(effects, token, JoinResponse).error is ErrorCode.fenced_instance_id
    assert c.group.static_members == {"i1": static_id} and pending in c.group.pending_members


def test_batched_leave_reports_each_member_and_removes_statics_by_instance_id() -> None:
    c = Coordinator()
    _, dynamic_id = _static_group(c)
    left = c.leave(("wrong-id", "i1"), ("", "i1"), (dynamic_id, None), ("ghost", None))
    assert [m.error for m in left.members] == [
        ErrorCode.fenced_instance_id,
        ErrorCode.none,
        ErrorCode.none,
        ErrorCode.unknown_member_id,
    ]
    assert c.state() is GroupState.EMPTY and c.group.static_members == {}


# -- timers -------------------------------------------------------------------------------


def test_wakeups_carry_the_next_deadline() -> None:
    c = Coordinator(_config(initial_rebalance_delay_ms=3_000))
    token, effects = c.join(client="a")
    assert _wakeup(effects) == SESSION_MS  # the handed-out id expires
    member_id = _answer(effects, token, JoinResponse).member_id
    c.now = 100
    _, effects = c.join(member_id, client="a")
    assert _wakeup(effects) == 3_100  # the initial delay
    effects = c.tick(3_100)
    assert _wakeup(effects) == 3_100 + SESSION_MS  # session, sooner than the sync deadline
    c.now = 4_000
    _, effects = c.sync(member_id, 1)
    assert _wakeup(effects) == 4_000 + SESSION_MS
    c.now = 9_000
    c.heartbeat(member_id, 1)
    assert next_deadline(c.group, c.config) == 9_000 + SESSION_MS


def test_a_new_member_whose_join_never_completes_expires() -> None:
    c = Coordinator(_config(new_member_join_timeout_ms=60_000))
    (a,) = c.stable_group("a", rebalance_ms=600_000)
    b = c.member_id_for("b")
    c.now = 1_000
    token, _ = c.join(b, client="b", rebalance_ms=600_000)  # a never rejoins...
    for at in range(9_000, 60_000, 9_000):  # ...but stays alive
        c.now = at
        assert c.heartbeat(a, 1).error is ErrorCode.rebalance_in_progress
    effects = c.tick(61_000)
    assert _answer(effects, token, JoinResponse).error is ErrorCode.unknown_member_id
    assert list(c.group.members) == [a]


def test_a_late_tick_fires_every_due_timer_in_deadline_order() -> None:
    c = Coordinator()
    a, _ = c.stable_group("a", "b")
    gen = c.group.generation_id
    c.now = 5_000
    c.heartbeat(a, gen)
    c.tick(100_000)  # b expires at 10 s (rebalance), then a at 15 s: empty, one new generation
    assert c.state() is GroupState.EMPTY and c.group.generation_id == gen + 1


# -- deletion, unloading, queries ----------------------------------------------------------


def test_only_an_empty_group_can_be_deleted_and_a_dead_group_refuses_everything() -> None:
    c = Coordinator()
    (a,) = c.stable_group("a")
    effects = c.run(Delete(100))
    assert _answer(effects, 100, DeleteResponse).error is ErrorCode.non_empty_group
    c.leave((a, None))
    effects = c.run(Delete(101))
    assert _answer(effects, 101, DeleteResponse).error is ErrorCode.none
    assert c.state() is GroupState.DEAD
    token, effects = c.join(client="x")
    assert _answer(effects, token, JoinResponse).error is ErrorCode.coordinator_not_available
    assert c.heartbeat(a, 2).error is ErrorCode.coordinator_not_available
    assert c.leave((a, None)).error is ErrorCode.coordinator_not_available
    effects = c.run(Delete(102))
    assert _answer(effects, 102, DeleteResponse).error is ErrorCode.group_id_not_found
    assert describe("g", c.group).state == "Dead"


def test_unload_answers_parked_requests_with_not_coordinator() -> None:
    c = Coordinator()
    a, _ = c.stable_group("a", "b")
    token, _ = c.join(a, client="a")
    effects = c.run(Unload())
    assert _answer(effects, token, JoinResponse).error is ErrorCode.not_coordinator
    assert c.state() is GroupState.DEAD and _wakeup(effects) is None


def test_commit_checks_follow_kafka() -> None:
    c = Coordinator()
    assert validate_commit(None, "", None, -1) is ErrorCode.none
    assert validate_commit(None, "m", None, 3) is ErrorCode.illegal_generation
    assert validate_commit(c.group, "", None, -1) is ErrorCode.none  # empty: simple commit
    static_id, dynamic_id = _static_group(c)
    gen = c.group.generation_id
    assert validate_commit(c.group, dynamic_id, None, gen) is ErrorCode.none
    assert validate_commit(c.group, "", None, -1) is ErrorCode.unknown_member_id
    assert validate_commit(c.group, "ghost", None, gen) is ErrorCode.unknown_member_id
    assert validate_commit(c.group, "old", "i1", gen) is ErrorCode.fenced_instance_id
    c.join(static_id, client="s", instance="i1", protocols=RANGE_OR_RR)
    assert validate_commit(c.group, dynamic_id, None, gen) is ErrorCode.none  # preparing
    c.join(dynamic_id, client="d", protocols=RANGE_OR_RR)
    gen = c.group.generation_id
    assert validate_commit(c.group, dynamic_id, None, gen) is ErrorCode.rebalance_in_progress
    c.run(Unload())
    assert validate_commit(c.group, dynamic_id, None, gen) is ErrorCode.coordinator_not_available


def test_describe_shows_metadata_and_assignments_only_when_stable() -> None:
    c = Coordinator()
    a, b = c.stable_group("a", "b")
    stable = describe("g", c.group)
    assert (stable.state, stable.protocol_type, stable.protocol_data) == (
        "Stable",
        "consumer",
        "range",
    )
    assert [(m.member_id, m.metadata, m.assignment) for m in stable.members] == [
        (a, b"range-meta", a.encode()),
        (b, b"range-meta", b.encode()),
    ]
    c.join(a, client="a")
    preparing = describe("g", c.group)
    assert preparing.state == "PreparingRebalance" and preparing.protocol_data == ""
    assert {(m.metadata, m.assignment) for m in preparing.members} == {(b"", b"")}
    assert listing(c.group) == GroupListing("g", "consumer", "PreparingRebalance")
    assert describe("nope", None).state == state_name(None) == "Dead"


def test_requests_for_a_missing_group_get_kafkas_answers() -> None:
    join = Join(1, "m-1", None, "c", "h", SESSION_MS, REBALANCE_MS, "consumer", RANGE)
    assert not creates_group(join)
    assert creates_group(Join(1, "", None, "c", "h", SESSION_MS, REBALANCE_MS, "consumer", RANGE))
    [answer] = answer_missing_group(join)
    assert isinstance(answer, JoinResponse) and answer.error is ErrorCode.unknown_member_id
    [left] = answer_missing_group(Leave(2, (("m-1", None),)))
    assert isinstance(left, LeaveResponse)
    assert left.members == (LeftMember("m-1", None, ErrorCode.unknown_member_id),)
    [deleted] = answer_missing_group(Delete(3))
    assert deleted == DeleteResponse(3, ErrorCode.group_id_not_found)
    assert answer_missing_group(Sync(4, "m-1", 1)) == [SyncResponse(4, ErrorCode.unknown_member_id)]
    [beat] = answer_missing_group(Heartbeat(5, "m-1", 1))
    assert beat == HeartbeatResponse(5, ErrorCode.unknown_member_id)
    assert answer_missing_group(Tick()) == []


# -- randomized sequences -----------------------------------------------------------------

PROTOCOL_CHOICES = (RANGE, STICKY_OR_RANGE, ROUNDROBIN, (("range", b"other-meta"),))
ACTORS = (("s0", "inst-0"), ("s1", "inst-1"), ("d2", None), ("d3", None))
# Mostly clients doing the next sensible thing; the rest are disruptions.
KINDS = ("step",) * 40 + (
    "join",
    "restart",
    "sync",
    "heartbeat",
    "stale_heartbeat",
    "leave",
    "wait",
    "tick_at_wakeup",
)

Action = tuple[str, int, int, int, list[int]]
_action: st.SearchStrategy[Action] = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, len(ACTORS) - 1),
    st.integers(0, len(PROTOCOL_CHOICES) - 1),
    st.integers(0, 1_000),  # ms that pass before the action
    st.lists(st.integers(0, len(ACTORS) - 1), min_size=1, max_size=3),
)
_actions = st.lists(_action, max_size=100)


@dataclass
class _Actor:
    """A client: it only knows what the coordinator told it."""

    client_id: str
    instance_id: str | None
    rebalance_ms: int
    member_id: str = ""
    generation: int = -1
    synced_generation: int = -1
    must_rejoin: bool = True
    incarnation: int = 0
    protocols: tuple[ProtocolEntry, ...] = RANGE
    leads: tuple[JoinedMember, ...] = ()


@dataclass
class _Simulation:
    """Clients acting on what they were told; every call is checked against the invariants."""

    initial_delay_ms: int
    group: Group = field(default_factory=lambda: Group("g"))
    now: int = 0
    wakeup: int | None = None
    parked: dict[int, tuple[int, int, Event]] = field(default_factory=dict)
    events: list[tuple[int, Event]] = field(default_factory=list)
    responses: list[Effect] = field(default_factory=list)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.config = _config(initial_rebalance_delay_ms=self.initial_delay_ms)
        self.actors = [
            _Actor(client, instance, 5_000 if i % 2 else 20_000)
            for i, (client, instance) in enumerate(ACTORS)
        ]

    def act(self, action: Action) -> None:
        kind, index, protocol, dt, chosen = action
        self.now += dt
        actor = self.actors[index]
        if kind == "step":
            kind = self._next_step(index)
        if kind == "idle":
            self.send(Tick(), None)
        elif kind == "wait":
            self.now += 40 * dt  # up to 40 s: sessions and rebalances time out
            self.send(Tick(), None)
        elif kind == "tick_at_wakeup":
            self.now = self.wakeup if self.wakeup is not None else self.now
            self.send(Tick(), None)
        elif kind == "leave":
            identities = tuple(
                (self.actors[i].member_id, self.actors[i].instance_id) for i in chosen
            )
            self.send(Leave(next(self.tokens), identities), None)
        elif kind in ("join", "restart"):
            if kind == "restart":  # the client restarts and forgets its member id
                actor.incarnation += 1
                actor.member_id, actor.leads, actor.must_rejoin = "", (), True
                actor.protocols = PROTOCOL_CHOICES[protocol]
            self.send(self._join(actor), index)
        elif kind == "sync":
            self.send(self._sync(actor), index)
        else:
            stale = 1 if kind == "stale_heartbeat" else 0
            event = Heartbeat(
                next(self.tokens), actor.member_id, actor.generation - stale, actor.instance_id
            )
            self.send(event, index)

    def _next_step(self, index: int) -> str:
        actor = self.actors[index]
        if any(i == index for i, _, _ in self.parked.values()):
            return "idle"  # its join or sync is parked
        if actor.must_rejoin or not actor.member_id:
            return "join"
        if actor.synced_generation != actor.generation:
            return "sync"
        return "heartbeat"

    def _join(self, actor: _Actor) -> Join:
        actor.must_rejoin = False
        return Join(
            next(self.tokens),
            actor.member_id,
            actor.instance_id,
            actor.client_id,
            "h",
            SESSION_MS,
            actor.rebalance_ms,
            "consumer",
            actor.protocols,
        )

    def _sync(self, actor: _Actor) -> Sync:
        assignments = {
            m.member_id: f"{actor.generation}:{m.group_instance_id or m.member_id}".encode()
            for m in actor.leads
        }
        return Sync(
            next(self.tokens),
            actor.member_id,
            actor.generation,
            actor.instance_id,
            assignments=assignments,
        )

    def send(self, event: Event, actor_index: int | None) -> None:
        before = self.group.generation_id
        if not isinstance(event, Tick):
            self.events.append((self.now, event))
        if isinstance(event, Join | Sync | Heartbeat) and actor_index is not None:
            self.parked[event.token] = (actor_index, self.actors[actor_index].incarnation, event)
        effects = handle(self.group, event, self.now, self.config)
        self._check_effects(event, effects)
        self._check_group(before)

    def _check_effects(self, event: Event, effects: list[Effect]) -> None:
        *answers, wakeup = effects
        assert isinstance(wakeup, Wakeup) and not any(isinstance(e, Wakeup) for e in answers)
        assert wakeup.at_ms is None or wakeup.at_ms > self.now
        assert wakeup.at_ms == next_deadline(self.group, self.config)
        self.wakeup = wakeup.at_ms
        self.responses.extend(answers)
        immediate = [e.token for e in answers if isinstance(e, HeartbeatResponse | LeaveResponse)]
        assert immediate == ([event.token] if isinstance(event, Heartbeat | Leave) else [])
        for effect in answers:
            if isinstance(effect, JoinResponse | SyncResponse | HeartbeatResponse):
                self._deliver(effect)
        still_parked = {
            token
            for m in self.group.members.values()
            for token in (m.join_token, m.sync_token)
            if token is not None
        }
        assert still_parked == set(self.parked)  # every token is answered exactly once

    def _deliver(self, response: JoinResponse | SyncResponse | HeartbeatResponse) -> None:
        index, incarnation, request = self.parked.pop(response.token)  # KeyError: answered twice
        actor = self.actors[index]
        if isinstance(request, Sync) and response.error is ErrorCode.none:
            assert isinstance(response, SyncResponse)
            owner = actor.instance_id or request.member_id
            assert response.assignment == f"{request.generation_id}:{owner}".encode()
            if incarnation == actor.incarnation:
                actor.synced_generation = request.generation_id
        if incarnation != actor.incarnation:
            return
        if isinstance(response, JoinResponse):
            self._joined(actor, response)
        elif response.error in (ErrorCode.unknown_member_id, ErrorCode.fenced_instance_id):
            actor.member_id, actor.leads, actor.must_rejoin = "", (), True
        elif response.error in (ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation):
            actor.must_rejoin = True

    def _joined(self, actor: _Actor, response: JoinResponse) -> None:
        if response.error is ErrorCode.none:
            actor.member_id, actor.generation = response.member_id, response.generation_id
            actor.leads, actor.must_rejoin = response.members, False
            if response.members:
                assert response.leader_id == response.member_id
                assert response.member_id in {m.member_id for m in response.members}
        elif response.error is ErrorCode.member_id_required:
            actor.member_id, actor.must_rejoin = response.member_id, True
        elif response.error in (ErrorCode.unknown_member_id, ErrorCode.fenced_instance_id):
            actor.member_id, actor.leads, actor.must_rejoin = "", (), True
        elif response.error is ErrorCode.rebalance_in_progress:
            actor.must_rejoin = True

    def _check_group(self, generation_before: int) -> None:
        g = self.group
        assert g.generation_id >= generation_before
        assert (g.leader_id is None) == (not g.members)
        assert g.leader_id is None or g.leader_id in g.members
        assert g.state is not GroupState.EMPTY or (not g.members and g.protocol_name is None)
        if g.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            assert g.members and g.protocol_name is not None
            assert all(g.protocol_name in m.protocol_names() for m in g.members.values())
        statics = {m.group_instance_id: i for i, m in g.members.items() if m.group_instance_id}
        assert statics == g.static_members
        assert not set(g.pending_members) & set(g.members)
        assert g.pending_sync <= set(g.members)
        for member in g.members.values():
            assert not member.awaiting_join or g.state is GroupState.PREPARING_REBALANCE
            assert not member.awaiting_sync or g.state is GroupState.COMPLETING_REBALANCE
        assert len({m.protocol_type for m in g.members.values()}) <= 1


@settings(max_examples=300, deadline=None)
@given(initial_delay_ms=st.sampled_from([0, 3_000]), actions=_actions)
def test_random_event_sequences_keep_the_group_invariants(
    initial_delay_ms: int, actions: list[Action]
) -> None:
    simulation = _Simulation(initial_delay_ms)
    for action in actions:
        simulation.act(action)


@settings(max_examples=150, deadline=None)
@given(initial_delay_ms=st.sampled_from([0, 3_000]), actions=_actions)
def test_ticks_only_decide_when_deferred_answers_come_out(
    initial_delay_ms: int, actions: list[Action]
) -> None:
    ticked = _Simulation(initial_delay_ms)
    for action in actions:
        ticked.act(action)
    ticked.send(Tick(), None)

    group, config = Group("g"), _config(initial_rebalance_delay_ms=initial_delay_ms)
    replayed: list[Effect] = []
    for at, event in [*ticked.events, (ticked.now, Tick())]:
        replayed.extend(e for e in handle(group, event, at, config) if not isinstance(e, Wakeup))
    assert replayed == ticked.responses
    assert group == ticked.group

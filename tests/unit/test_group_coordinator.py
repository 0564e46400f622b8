"""The group coordinator's routing of requests, driven without sockets or clocks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tidelog.broker.groups.coordinator import GroupCoordinator
from tidelog.broker.groups.events import Effect, Event, Heartbeat, Join, Leave, Sync
from tidelog.broker.groups.model import GroupConfig
from tidelog.protocol.errors import ErrorCode


def join(token: int) -> Event:
    return Join(
        token=token,
        member_id="",
        group_instance_id=None,
        client_id="c",
        client_host="/127.0.0.1",
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        protocol_type="consumer",
        protocols=(("range", b""),),
        require_known_member_id=False,
    )


MEMBERSHIP: dict[str, Callable[[int], Event]] = {
    "join": join,
    "sync": lambda token: Sync(token=token, member_id="m", generation_id=1),
    "heartbeat": lambda token: Heartbeat(token=token, member_id="m", generation_id=1),
    "leave": lambda token: Leave(token=token, members=(("m", None),)),
}


@pytest.mark.parametrize("request_kind", MEMBERSHIP)
def test_a_membership_request_without_a_group_id_is_invalid_group_id(request_kind: str) -> None:
    async def ask() -> tuple[Effect, GroupCoordinator]:
        coordinator = GroupCoordinator(GroupConfig(), clock_ms=lambda: 0)
        return await coordinator.call("", MEMBERSHIP[request_kind]), coordinator

    answer, coordinator = asyncio.run(ask())
    assert getattr(answer, "error", None) is ErrorCode.invalid_group_id
    assert coordinator.groups == {}  # and no nameless group was created


def test_a_named_group_is_still_joined() -> None:
    async def ask() -> Effect:
        return await GroupCoordinator(GroupConfig(), clock_ms=lambda: 0).call("g", join)

    answer = asyncio.run(ask())
    assert getattr(answer, "error", None) is ErrorCode.none

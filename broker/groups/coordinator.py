"""The group coordinator at run time: the pure state machine, plus time and waiting.

Owns: the live `Group`s of this broker, one timer per group (re-armed from every
`Wakeup` effect), and the futures of requests whose answers are deferred (a JoinGroup
completes when the rebalance does; a follower's SyncGroup when the leader's arrives).
All transitions happen in `broker/groups/state.py::handle`; this module only feeds it
events, the clock and ticks, and routes its effects back to the waiting requests.

Guarantees: calls for one group are applied one at a time in arrival order (the event
loop is single-threaded and `handle` is synchronous); every request gets exactly one
answer, NOT_COORDINATOR for those still parked when the broker stops.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable

from tidelog.broker.groups.events import Delete, Effect, Event, Tick, Unload, Wakeup
from tidelog.broker.groups.model import DEAD, Group, GroupConfig
from tidelog.broker.groups.queries import (
    answer_invalid_group_id,
    answer_missing_group,
    answer_not_coordinator,
    creates_group,
)
from tidelog.broker.groups.state import handle


class GroupCoordinator:
    def __init__(
        self,
        config: GroupConfig,
        clock_ms: Callable[[], int],
        coordinates: Callable[[str], bool] = lambda _: True,
    ) -> None:
        self.config = config
        self._coordinates = coordinates
        self._clock_ms = clock_ms
        self.groups: dict[str, Group] = {}
        self._waiting: dict[int, asyncio.Future[Effect]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tokens = itertools.count(1)
        # Rebalances completed here, per group (a generation step each): for metrics.
        self.rebalances: Counter[str] = Counter()

    async def call(self, group_id: str, make_event: Callable[[int], Event]) -> Effect:
        """Apply the event built for a fresh token; wait for the effect answering it."""
        token = next(self._tokens)
        fut: asyncio.Future[Effect] = asyncio.get_running_loop().create_future()
        self._waiting[token] = fut
        self._dispatch(group_id, make_event(token))
        try:
            return await fut
        finally:
            self._waiting.pop(token, None)

    def group(self, group_id: str) -> Group | None:
        group = self.groups.get(group_id)
        return None if group is None or group.state is DEAD else group

    def _dispatch(self, group_id: str, event: Event) -> None:
        if not group_id and not isinstance(event, Unload | Tick | Delete):
            # As Kafka: a group that members join must be named ("" is only for offsets
            # and the admin APIs), so no request can bring a nameless group into being.
            self._deliver(group_id, answer_invalid_group_id(event))
            return
        if not isinstance(event, Unload | Tick) and not self._coordinates(group_id):
            # The group's slot moved to another broker: let go of it, send clients there.
            if group_id in self.groups:
                self._dispatch(group_id, Unload())
                self.groups.pop(group_id, None)
            self._deliver(group_id, answer_not_coordinator(event))
            return
        group = self.group(group_id)
        if group is None:
            if not creates_group(event):
                self._deliver(group_id, answer_missing_group(event))
                return
            group = self.groups[group_id] = Group(group_id)
        generation = group.generation_id
        effects = handle(group, event, self._clock_ms(), self.config)
        if group.generation_id > generation:
            self.rebalances[group_id] += group.generation_id - generation
        self._deliver(group_id, effects)
        if group.state is DEAD:
            self.groups.pop(group_id, None)

    def _deliver(self, group_id: str, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Wakeup):
                self._arm(group_id, effect.at_ms)
                continue
            fut = self._waiting.get(effect.token)
            if fut is not None and not fut.done():
                fut.set_result(effect)

    def _arm(self, group_id: str, at_ms: int | None) -> None:
        old = self._timers.pop(group_id, None)
        if old is not None:
            old.cancel()
        if at_ms is None:
            return
        delay = max(0.0, (at_ms - self._clock_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._timers[group_id] = loop.call_later(delay, self._dispatch, group_id, Tick())

    def close(self) -> None:
        """Stop coordinating: parked requests are answered NOT_COORDINATOR."""
        for group_id in list(self.groups):
            self._dispatch(group_id, Unload())
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

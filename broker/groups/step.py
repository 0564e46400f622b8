"""The context of one `handle` call: the group, the instant, the settings, the effects so far.

Owns: `Step`, the value every transition module (join.py, sync.py, membership.py,
rebalance.py, timers.py) takes instead of four arguments.

Guarantees: plain data; `now` is the instant the transition happens at (a timer fires
at its own deadline, not at the caller's `now_ms`), and `out` is shared by every
`Step` of one call, so effects come out in the order they were released.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidelog.broker.groups.events import Effect
from tidelog.broker.groups.model import Group, GroupConfig


@dataclass(slots=True)
class Step:
    group: Group
    now: int
    config: GroupConfig
    out: list[Effect]

    def at(self, now: int) -> Step:
        """The same call, at another instant (a timer firing at its deadline)."""
        return Step(self.group, now, self.config, self.out)

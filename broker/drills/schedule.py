"""When a drill acts on its load, counted in records, and where the load waits for it.

Owns: the one schedule every scenario follows. It is counted in records acknowledged,
not in seconds, so it holds for any --records however fast or slow the machine is:

- at `commit` acked the load pauses while the drill commits the offsets group and
  looks at the bucket (steps that take a second or so and must not eat the load);
- at `fail` acked the drill breaks something (kill, freeze, cut, join, leave);
- the load sends no record past `hold` until the failure has happened, so the load
  can never end before it, and some of the load always comes after it;
- a change that takes a while to land (a partition move) keeps the load at `settle`
  until the drill has seen it land, so some of the load always meets the new placement.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# Each step needs a record of its own: one before the commit, one between the commit and
# the failure, one in flight at it, one while a change lands, and some after.
MIN_RECORDS = 6


class ScheduleError(ValueError):
    """A load too small for the schedule: the caller's mistake, said in one line."""


@dataclass(frozen=True)
class Schedule:
    records: int
    commit: int
    fail: int
    hold: int
    settle: int

    @classmethod
    def of(cls, records: int) -> Schedule:
        """Commit at 1/6, fail at 1/3, hold at 1/2, settle at 2/3 of `records`."""
        if records < MIN_RECORDS:
            raise ScheduleError(
                f"a drill needs at least {MIN_RECORDS} records, some before and some after "
                f"its failure records={records}"
            )
        return cls(records, records // 6, records // 3, records // 2, 2 * records // 3)

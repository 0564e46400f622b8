"""The drill's schedule and the load's holds: a failure always lands while the load runs.

The load runs against a fake producer that acknowledges on poll (no sockets) and, where
the pace matters, a fake clock that poll advances (no sleeps).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidelog.broker.drills.load import Load
from tidelog.broker.drills.records import payment_stream
from tidelog.broker.drills.schedule import MIN_RECORDS, Schedule, ScheduleError


@given(st.integers(min_value=MIN_RECORDS, max_value=10**9))
def test_schedule_puts_commit_failure_hold_and_settle_inside_any_load(records: int) -> None:
    plan = Schedule.of(records)
    assert 0 < plan.commit < plan.fail < plan.hold < plan.settle < plan.records == records


def test_schedule_refuses_a_load_too_small_to_have_records_after_its_failure() -> None:
    with pytest.raises(ScheduleError, match=f"records={MIN_RECORDS - 1}"):
        Schedule.of(MIN_RECORDS - 1)


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeMessage:
    at: tuple[int, int]

    def partition(self) -> int:
        return self.at[0]

    def offset(self) -> int:
        return self.at[1]


@dataclass
class FakeProducer:
    """Queues what is produced and acknowledges it on the next poll (offsets count up in
    one partition); poll(timeout) moves the clock on by the timeout, as a real one waits."""

    clock: FakeClock
    produced_at: list[float] = field(default_factory=list)
    queued: list[Callable[[Any, Any], None]] = field(default_factory=list)

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        self.produced_at.append(self.clock())
        self.queued.append(on_delivery)

    def poll(self, timeout: float) -> int:
        self.clock.now += timeout
        done, self.queued = self.queued, []
        for n, on_delivery in enumerate(done, start=len(self.produced_at) - len(done)):
            on_delivery(None, FakeMessage((0, n)))
        return len(done)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0

    def __len__(self) -> int:
        return len(self.queued)


def fake_load(records: int, rate: float = float("inf")) -> tuple[Load, FakeProducer]:
    clock = FakeClock()
    producer = FakeProducer(clock)
    load = Load(
        "fake:9092",
        payment_stream(1),
        records,
        rate=rate,
        producer_factory=lambda config: producer,
        clock=clock,
    )
    return load, producer


@pytest.mark.parametrize("records", [MIN_RECORDS, 500, 8000])
def test_a_load_held_by_the_schedule_cannot_end_before_the_failure(records: int) -> None:
    plan = Schedule.of(records)
    load, _ = fake_load(records)  # unpaced: it would end at once if nothing held it
    load.hold(plan.commit)
    load.start()
    load.wait_settled(plan.commit)
    assert (load.sent, load.acked(), load.running()) == (plan.commit, plan.commit, True)
    load.hold(plan.hold)
    load.wait_settled(plan.fail)  # the failure point: the load is still running
    load.check_running()
    load.wait_settled(plan.hold)
    assert (load.sent, load.running()) == (plan.hold, True)
    load.hold(None)  # the failure happened: let the rest go
    assert load.join(30)
    assert load.sent == load.acked() == records
    assert [ack.offset for _, ack in load.acks] == list(range(records))


def test_a_load_resumes_its_pace_after_a_hold_instead_of_bursting() -> None:
    load, producer = fake_load(40, rate=1000)
    load.hold(10)
    load.start()
    load.wait_settled(10)
    producer.clock.now += 5.0  # held for 5 s: 5,000 records behind a pace kept from the start
    load.hold(None)
    assert load.join(30)
    after = producer.produced_at[10:]
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert gaps == pytest.approx([0.001] * len(gaps))

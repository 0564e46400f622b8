"""The broker's memory tuning: the collector leaves start-up objects alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tidelog.broker.memory import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_what_is_alive_and_collects_less_often() -> None:
    kept = [{"alive": i} for i in range(1000)]
    frozen = tune_gc()
    assert frozen >= len(kept)
    assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # rarer than Python's default young collections
    assert not any(o is kept[0] for o in gc.get_objects())  # frozen: no longer walked

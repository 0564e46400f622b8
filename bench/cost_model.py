"""The monthly object-store price of a sustained produce rate, in a retained steady state.

Owns: the arithmetic that turns what the cost workload
measured (bench/workloads.py `run_cost`) into a month: pure functions, no I/O. The model
(docs/benchmarks.md, item 4) is a broker that has run long enough for retention to
delete as much as is produced: the bucket holds `retention` of data, not all history.

* tidelog: the bucket holds the partitions' segment objects for the retention period
  (bytes stored per byte produced measured under `segments/` at the end of the run),
  plus the per-flush commit objects the janitor has not collected yet, a window that
  does not grow with retention (`commit_window_s`). Requests per second: the flushes'
  PUTs (measured), two PUTs per segment rolled (the object and its op's commit) and one
  GET per chunk copied (at the broker's defaults), replay GETs (measured), the
  janitor's LIST pages (one per 1,000 keys under `streams/` and `segments/` each pass).
  DELETEs (one per commit and one per segment, eventually) are free.
* Tansu does not merge or delete: storage is a month of the bytes it PUT per byte
  produced, requests are its measured PUTs and replay GETs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tidelog.broker.observability.prices import (
    GET_USD_PER_1000,
    LIST_USD_PER_1000,
    PUT_USD_PER_1000,
    STORAGE_USD_PER_GB_MONTH,
)
from tidelog.broker.observability.prices import (
    MONTH_S as MONTH_S,
)

MB = 1_000_000
RETENTION_S = MONTH_S  # the 30-day retention the month is priced for
# Public S3 Standard list prices, us-east-1: broker/observability/prices.py (the status
# page prices with the same numbers).
LIST_PAGE_KEYS = 1000

# tidelog's defaults (broker/config.py, storage/store_config.py, Kafka's topic defaults)
DEFAULT_CHECK_INTERVAL_S = 300.0  # --log-retention-check-interval-ms
DEFAULT_DELETE_DELAY_S = 60.0  # --log-segment-delete-delay-ms
DEFAULT_SEGMENT_OBJECT_BYTES = 64 << 20  # --segment-object-bytes (segment.bytes is 1 GiB)
DEFAULT_SEGMENT_MS = 7 * 24 * 3600 * 1000  # segment.ms
SNAPSHOT_EVERY = 256  # stream commits between snapshots; the janitor waits for two
# A roll is the segment object's PUT and the `segment` op's commit; the op rides the next
# flush when one is due, else it is a commit of its own (the bench saw one per roll
# while idle): priced as its own PUT, an upper bound.
ROLL_PUTS_PER_SEGMENT = 2


@dataclass(frozen=True)
class Month:
    """A month's price by part, in USD."""

    storage: float
    put: float
    get: float
    list: float
    stored_gb: float  # bytes held in steady state, GB

    @property
    def total(self) -> float:
        return self.storage + self.put + self.get + self.list


@dataclass(frozen=True)
class TidelogRun:
    """What the cost workload measured of tidelog (rates per second of produce)."""

    rate_b_s: float  # bytes produced per second the month is priced at
    partitions: int
    flush_puts_s: float  # PUTs under streams/ while producing
    commit_bytes_per_b: float  # bytes PUT under streams/ per byte produced
    segment_bytes_per_b: float  # bytes under segments/ at the end per byte produced
    chunks_per_flush: float  # partitions with data in one flush (chunks a roll copies)
    replay_gets_per_gb: float  # GETs of a fresh broker reading everything once
    flush_interval_s: float = 0.2


def segment_fill_s(rate_b_s: float, partitions: int) -> float:
    """Seconds until a partition's active segment rolls at the defaults: it fills
    `--segment-object-bytes`, or its first record is `segment.ms` old."""
    per_partition = rate_b_s / max(partitions, 1)
    by_size = DEFAULT_SEGMENT_OBJECT_BYTES / per_partition if per_partition else math.inf
    return min(by_size, DEFAULT_SEGMENT_MS / 1000)


def commit_window_s(run: TidelogRun) -> float:
    """How long a per-flush commit object stays in the bucket at the defaults: until every
    partition in it rolled (a segment's fill time plus up to one check interval), two
    stream snapshots are past it, and the janitor saw it collectable twice, a delete
    delay apart."""
    rolled = segment_fill_s(run.rate_b_s, run.partitions) + DEFAULT_CHECK_INTERVAL_S
    snapshots = 2 * SNAPSHOT_EVERY * run.flush_interval_s
    return max(rolled, snapshots) + DEFAULT_DELETE_DELAY_S + DEFAULT_CHECK_INTERVAL_S


def tidelog_month(run: TidelogRun, retention_s: float = RETENTION_S) -> Month:
    """The steady state at tidelog's defaults, from the measured per-byte figures."""
    segment_bytes = run.rate_b_s * retention_s * run.segment_bytes_per_b
    commit_bytes = run.rate_b_s * commit_window_s(run) * run.commit_bytes_per_b
    stored_gb = (segment_bytes + commit_bytes) / 1e9
    fill = segment_fill_s(run.rate_b_s, run.partitions)
    roll_puts_s = ROLL_PUTS_PER_SEGMENT * run.partitions / fill
    # every chunk copied once; chunks come from data flushes, at most one per interval
    # (the measured PUT rate also has commits that carry only ops)
    data_flushes_s = min(run.flush_puts_s, 1 / run.flush_interval_s)
    roll_gets_s = data_flushes_s * run.chunks_per_flush
    replay_gets_s = run.replay_gets_per_gb * run.rate_b_s / 1e9  # a month replayed once
    segment_objects = run.partitions * retention_s / fill
    commit_objects = run.flush_puts_s * commit_window_s(run)
    pages = math.ceil(segment_objects / LIST_PAGE_KEYS) + math.ceil(commit_objects / LIST_PAGE_KEYS)
    lists_s = pages / DEFAULT_CHECK_INTERVAL_S
    return Month(
        storage=stored_gb * STORAGE_USD_PER_GB_MONTH,
        put=(run.flush_puts_s + roll_puts_s) * MONTH_S * PUT_USD_PER_1000 / 1000,
        get=(roll_gets_s + replay_gets_s) * MONTH_S * GET_USD_PER_1000 / 1000,
        list=lists_s * MONTH_S * LIST_USD_PER_1000 / 1000,
        stored_gb=stored_gb,
    )


def all_history_month(
    rate_b_s: float, puts_s: float, put_bytes_per_b: float, replay_gets_per_gb: float
) -> Month:
    """A broker that never merges (Tansu): a month of what it PUT is stored (30-day
    retention, after a month of produce), its measured PUT rate, one replay."""
    stored_gb = rate_b_s * RETENTION_S * put_bytes_per_b / 1e9
    replay_gets_s = replay_gets_per_gb * rate_b_s / 1e9
    return Month(
        storage=stored_gb * STORAGE_USD_PER_GB_MONTH,
        put=puts_s * MONTH_S * PUT_USD_PER_1000 / 1000,
        get=replay_gets_s * MONTH_S * GET_USD_PER_1000 / 1000,
        list=0.0,
        stored_gb=stored_gb,
    )

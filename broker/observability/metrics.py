"""The broker's Prometheus metrics: one registry per broker, exposed at `/metrics`.

Owns: every `tidelog_*` metric, their buckets and labels, and the hooks the broker's
parts call (`request`, `bytes_in`, `bytes_out`, `object_request`, `wal_synced`,
`fenced`). What is state rather than an event (connections open, partitions owned,
cluster members, bytes not yet uploaded, group lag, read-cache hits) is read from the
broker when Prometheus scrapes (`StateCollector`), so keeping it costs nothing between
scrapes. The list, with what each one means, is docs/metrics.md.

Guarantees: the exposition is `prometheus_client`'s; hooks never raise and take no
lock but the client library's own (the WAL thread calls `wal_synced`). Scrapes run
on the event loop, so the state they read is never half-updated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tidelog.protocol.errors import ErrorCode

# Seconds: 100 µs to 30 s, so p99s from sub-millisecond produce acks to long polls
# and slow object-store calls fall inside a bucket rather than past the last one.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"UNKNOWN_{code}"


def object_kind(key: str) -> str:
    """What a bucket key holds (docs/bucket-layout.md), for the `object` label: a flush
    is a PUT of a `commit`."""
    if key.startswith("segments/"):
        return "segment"
    if key.startswith("streams/"):
        return "commit" if "/log/" in key else "snapshot"
    if key.startswith("log/"):
        return "metadata"
    if key.startswith("snapshots/"):
        return "snapshot"
    return "other"


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    lag: int


@dataclass(frozen=True, slots=True)
class GroupGeneration:
    group: str
    state: str
    generation: int
    members: int


class BrokerState(Protocol):
    """What the scrape-time collector reads from the broker."""

    def connections_open(self) -> int: ...
    def partitions_owned(self) -> int: ...
    def cluster_members(self) -> int: ...
    def unuploaded_bytes(self) -> int: ...
    def cache_lookups(self) -> tuple[int, int]: ...  # (hits, misses)
    def group_lags(self) -> Iterable[GroupLag]: ...
    def group_generations(self) -> Iterable[GroupGeneration]: ...
    def group_rebalances(self) -> Mapping[str, int]: ...
    def ready(self) -> bool: ...


class BrokerMetrics:
    def __init__(self, node_id: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.node_id = node_id
        self._requests = Counter(
            "tidelog_requests",
            "Requests answered, by API and the first error code in the answer",
            ["api", "error"],
            registry=r,
        )
        self._request_seconds = Histogram(
            "tidelog_request_duration_seconds",
            "Time from a request's start to its answer, by API (Fetch includes long polls)",
            ["api"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._bytes_in = Counter(
            "tidelog_bytes_in",
            "Record-batch bytes appended (acknowledged), by topic",
            ["topic"],
            registry=r,
        )
        self._bytes_out = Counter(
            "tidelog_bytes_out", "Record-batch bytes served to fetches, by topic", ["topic"],
            registry=r,
        )  # fmt: skip
        self._wal_write = Histogram(
            "tidelog_wal_write_duration_seconds",
            "One WAL group write: writev plus fdatasync",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._wal_fsync = Histogram(
            "tidelog_wal_fsync_duration_seconds",
            "The fdatasync of one WAL group write",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._wal_bytes = Counter("tidelog_wal_bytes", "Bytes written to the WAL", registry=r)
        self._store_requests = Counter(
            "tidelog_object_store_requests",
            "Object-store requests by operation, kind of object and outcome (ok, "
            "not_found, precondition_failed, error); a flush is a put_if_absent of a commit",
            ["op", "object", "outcome"],
            registry=r,
        )
        self._store_bytes = Counter(
            "tidelog_object_store_bytes",
            "Bytes sent (puts) and received (gets) by operation and kind of object",
            ["op", "object"],
            registry=r,
        )
        self._store_seconds = Histogram(
            "tidelog_object_store_request_duration_seconds",
            "Object-store request time by operation and kind of object",
            ["op", "object"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._fenced = Counter(
            "tidelog_fencing_events",
            "Times this broker found its partitions taken by a newer owner and stepped down",
            registry=r,
        )
        self._api_names: dict[int, str] = {}
        self._state: StateCollector | None = None

    # -- hooks -------------------------------------------------------------------------

    def name_apis(self, names: Mapping[int, str]) -> None:
        self._api_names = dict(names)

    def request(self, api_key: int, error_code: int, seconds: float) -> None:
        api = self._api_names.get(api_key) or f"Api{api_key}"
        self._requests.labels(api, error_name(error_code)).inc()
        self._request_seconds.labels(api).observe(seconds)

    def bytes_in(self, topic: str, size: int) -> None:
        self._bytes_in.labels(topic).inc(size)

    def bytes_out(self, topic: str, size: int) -> None:
        self._bytes_out.labels(topic).inc(size)

    def object_request(self, op: str, key: str, outcome: str, size: int, seconds: float) -> None:
        kind = object_kind(key)
        self._store_requests.labels(op, kind, outcome).inc()
        self._store_seconds.labels(op, kind).observe(seconds)
        if size:
            self._store_bytes.labels(op, kind).inc(size)

    def wal_synced(self, write_s: float, fsync_s: float, size: int) -> None:
        self._wal_write.observe(write_s)
        self._wal_fsync.observe(fsync_s)
        self._wal_bytes.inc(size)

    def fenced(self) -> None:
        self._fenced.inc()

    # -- scraping ----------------------------------------------------------------------

    def watch(self, state: BrokerState) -> None:
        """Read `state` at every scrape from now on."""
        if self._state is None:
            self._state = StateCollector(state, self.node_id)
            self.registry.register(self._state)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    def __init__(self, state: BrokerState, node_id: int) -> None:
        self._state = state
        self._node_id = node_id

    def collect(self) -> Iterator[Metric]:
        s = self._state
        yield _gauge("tidelog_broker_info", "This broker (value 1)", 1, node_id=self._node_id)
        yield _gauge("tidelog_ready", "1 once the broker serves (see /readyz)", int(s.ready()))
        yield _gauge("tidelog_connections_open", "Client connections open", s.connections_open())
        yield _gauge(
            "tidelog_partitions_owned", "Partitions this broker leads", s.partitions_owned()
        )
        yield _gauge("tidelog_cluster_members", "Live brokers in the cluster", s.cluster_members())
        yield _gauge(
            "tidelog_unuploaded_bytes",
            "Bytes acknowledged (in the WAL) but not yet in a landed commit",
            s.unuploaded_bytes(),
        )
        hits, misses = s.cache_lookups()
        cache = CounterMetricFamily(
            "tidelog_read_cache_lookups", "Chunk reads of the read cache", labels=["result"]
        )
        cache.add_metric(["hit"], hits)
        cache.add_metric(["miss"], misses)
        yield cache
        yield from self._groups()

    def _groups(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "tidelog_consumer_group_lag",
            "High watermark minus committed offset, for groups this broker coordinates "
            "on partitions it leads",
            labels=["group", "topic", "partition"],
        )
        for row in self._state.group_lags():
            lag.add_metric([row.group, row.topic, str(row.partition)], row.lag)
        yield lag
        members = GaugeMetricFamily(
            "tidelog_consumer_group_members",
            "Members of each live group this broker coordinates, by state",
            labels=["group", "state"],
        )
        rebalances = CounterMetricFamily(
            "tidelog_consumer_group_rebalances",
            "Rebalances completed on this broker (a generation step each), by group",
            labels=["group"],
        )
        for g in self._state.group_generations():
            members.add_metric([g.group, g.state], g.members)
        for group, count in sorted(self._state.group_rebalances().items()):
            rebalances.add_metric([group], count)
        yield members
        yield rebalances


def _gauge(name: str, doc: str, value: float, **labels: object) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric([str(v) for v in labels.values()], value)
    return family

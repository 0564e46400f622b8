"""The status page's data: one JSON document describing this broker and what it sees.

Owns: `StatusReport` (what `/api/status` answers and the page at `/` renders) and
`RateWindow`, which turns the object store's running call counts into rates over the
last minute. The document (docs/observability.md, "Status"):

    broker      node id, ready, listener, durability, object store, stream, uptime
    members     the cluster's live brokers, each with the partitions it owns
    topics      partitions (owner, log start, end offset, bytes held: known for the
                partitions this broker leads), topic id and configs set on the topic
    groups      groups this broker coordinates: state, members, generation, lag
    uploads     bytes acknowledged but not in a landed commit, WAL bytes waiting
    store       calls per second by op, errors and mean latency since start, and the
                month's cost at S3 list prices for the current rate and bytes held

Guarantees: built on the event loop from in-memory state only; never waits.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidelog.broker.observability.broker_state import NodeState
from tidelog.broker.observability.measured_store import MeasuredStore
from tidelog.broker.observability.prices import month_usd

WINDOW_S = 60.0


@dataclass
class RateWindow:
    """Calls per second by op over the last `WINDOW_S` (or since the first sample)."""

    samples: deque[tuple[float, Counter[str]]] = field(default_factory=deque)

    def sample(self, now: float, counts: Mapping[str, int]) -> None:
        self.samples.append((now, Counter(counts)))
        while len(self.samples) > 2 and self.samples[1][0] <= now - WINDOW_S:
            self.samples.popleft()

    def rates(self) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        elapsed = t1 - t0
        if elapsed <= 0:
            return {}
        return {op: (last[op] - first[op]) / elapsed for op in sorted(last)}


class StatusReport:
    def __init__(self, state: NodeState, store: MeasuredStore, started: float) -> None:
        self.state = state
        self.store = store
        self.started = started
        self.window = RateWindow()

    def sample(self) -> None:
        self.window.sample(time.monotonic(), self.store.counts)

    def build(self) -> dict[str, Any]:
        self.sample()
        node = self.state.node
        config = node.config
        topics = self._topics()
        stored = sum(p["bytes"] or 0 for t in topics for p in t["partitions"])
        rates = self.window.rates()
        return {
            "broker": {
                "node_id": node.node_id,
                "cluster_id": node.cluster_id,
                "ready": node.ready,
                "advertised": str(config.advertised),
                "durability": config.durability,
                "object_store": node.object_store.url,
                "stream": node.stream_id if node.ready else None,
                "uptime_s": round(time.monotonic() - self.started, 1),
                "connections": self.state.connections_open(),
            },
            "members": self._members(),
            "topics": topics,
            "groups": self._groups(),
            "uploads": {
                "unuploaded_bytes": self.state.unuploaded_bytes(),
                "wal_pending_bytes": node.store.wal.pending_bytes if node.store.wal else 0,
            },
            "store": {
                "rates_per_s": rates,
                "calls": dict(sorted(self.store.counts.items())),
                "errors": dict(sorted(self.store.errors.items())),
                "mean_ms": {
                    op: round(1000 * self.store.seconds[op] / n, 3)
                    for op, n in sorted(self.store.counts.items())
                    if n
                },
                "stored_bytes": stored,
                "month_usd": {k: round(v, 2) for k, v in month_usd(rates, stored).items()},
            },
        }

    def _members(self) -> list[dict[str, Any]]:
        meta = self.state.node.store.meta.state
        owned: dict[int, int] = Counter()
        for key in meta.owners:
            owner = meta.owner_of(key)
            if owner is not None and key[0] in self.state.node.topics():
                owned[owner.node] += 1
        return [
            {
                "node_id": m.node,
                "address": f"{m.host}:{m.port}",
                "durability": m.durability,
                "partitions": owned.get(m.node, 0),
                "this": m.node == self.state.node.node_id,
            }
            for m in self.state.node.live_brokers()
        ]

    def _topics(self) -> list[dict[str, Any]]:
        node = self.state.node
        out = []
        for name, topic in sorted(node.topics().items()):
            partitions = []
            for index in range(topic.partitions):
                leader = node.partition_leader(name, index)
                part = node.partition_log(name, index)
                partitions.append(
                    {
                        "partition": index,
                        "leader": leader.node_id if leader else None,
                        "log_start": part.log_start if part else None,
                        "end_offset": part.high_watermark if part else None,
                        "bytes": sum(c.length for c in part.state.chunks) if part else None,
                    }
                )
            out.append(
                {
                    "name": name,
                    "topic_id": topic.topic_id,
                    "partitions": partitions,
                    "configs": dict(sorted(topic.configs.items())),
                }
            )
        return out

    def _groups(self) -> list[dict[str, Any]]:
        node = self.state.node
        out = []
        for group_id in self.state.group_ids():
            live = node.live_group(group_id)
            lags = list(self.state.lag_of(group_id))
            out.append(
                {
                    "group": group_id,
                    "state": live.state.value if live else "Empty",
                    "members": len(live.members) if live else 0,
                    "generation": live.generation_id if live else None,
                    "lag": sum(row.lag for row in lags),
                    "partitions": [
                        {"topic": r.topic, "partition": r.partition, "lag": r.lag} for r in lags
                    ],
                }
            )
        return out

"""What a scrape and the status page read from a running broker.

Owns: `NodeState`, the one place that reaches into the node, its store and its
connection table for observability, so the metrics and the status page see the
broker through one narrow surface (`BrokerState` in metrics.py) and never hold on to
its parts.

Guarantees: read-only, synchronous, cheap (no I/O): called on the event loop, it sees
the broker between two steps, never half-way through one. Lag is known only where
both ends are here: groups this broker coordinates, on partitions it leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING

from tidelog.broker.observability.metrics import GroupGeneration, GroupLag
from tidelog.storage.meta_state import GROUP_TOPIC

if TYPE_CHECKING:
    from tidelog.broker.node import BrokerNode


class NodeState:
    def __init__(self, node: BrokerNode, connections: Sized) -> None:
        self.node = node
        self._connections = connections

    def ready(self) -> bool:
        return self.node.ready

    def connections_open(self) -> int:
        return len(self._connections)

    def owned_partitions(self) -> list[tuple[str, int]]:
        return sorted(k for k in self.node.store.partitions if k[0] != GROUP_TOPIC)

    def partitions_owned(self) -> int:
        return len(self.owned_partitions())

    def cluster_members(self) -> int:
        return len(self.node.live_brokers())

    def unuploaded_bytes(self) -> int:
        return self.node.store.backlog.uncommitted_bytes

    def cache_lookups(self) -> tuple[int, int]:
        reader = self.node.store.reader
        return reader.cache_hits, reader.cache_misses

    def group_ids(self) -> list[str]:
        return sorted(set(self.node.live_group_ids()) | set(self.node.groups_with_offsets()))

    def group_lags(self) -> Iterator[GroupLag]:
        for group in self.group_ids():
            yield from self.lag_of(group)

    def lag_of(self, group: str) -> Iterator[GroupLag]:
        for (topic, partition), committed in sorted(self.node.committed_offsets(group).items()):
            part = self.node.partition_log(topic, partition)
            if part is not None and committed.offset >= 0:
                lag = max(part.high_watermark - committed.offset, 0)
                yield GroupLag(group, topic, partition, lag)

    def group_generations(self) -> Iterable[GroupGeneration]:
        for group_id in sorted(self.node.live_group_ids()):
            group = self.node.live_group(group_id)
            if group is not None:
                yield GroupGeneration(
                    group_id, group.state.value, group.generation_id, len(group.members)
                )

    def group_rebalances(self) -> Mapping[str, int]:
        return self.node.groups.rebalances

"""KIP-951 leader hints: who leads a partition a client sent to the wrong broker.

Owns: `LeaderHints`, which Fetch (v16+) and Produce (v10+) use to fill a partition's
`current_leader` (leader id, leader epoch) and the response's `node_endpoints` (where
each broker named there is reached), so a client whose metadata is stale goes straight
to the new owner instead of asking Metadata first and retrying.

Guarantees: the leader, its epoch and its address are exactly what Metadata answers
at the same moment (`Node.partition_leader`, the epoch as `as_leader_epoch` reports
it, the address on the listener the request came in on: `broker_address`). A partition
between owners is hinted as (-1, -1) with no endpoint, Kafka's "unknown", so the client
falls back to Metadata; a leader with no address on this listener is hinted by id and
epoch only. The hint is advice: nothing here decides what a request may do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidelog.broker.handlers.base import broker_address
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.leader_epochs import as_leader_epoch

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

NO_LEADER = (-1, -1)
# The partition errors Kafka hints for (KafkaApis: Fetch v16+, Produce v10+).
FETCH_HINTED = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch})
PRODUCE_HINTED = frozenset({ErrorCode.not_leader_or_follower})


class LeaderHints:
    """The hints of one response: ask `current_leader` per erroring partition, then
    send `endpoints` (node id -> (host, port)) once, as the response's node_endpoints."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._addresses: dict[int, tuple[str, int] | None] | None = None
        self.endpoints: dict[int, tuple[str, int]] = {}

    def current_leader(self, topic: str, partition: int) -> tuple[int, int]:
        """(leader id, leader epoch) of the partition now; (-1, -1) if it has none."""
        owner = self._node.partition_leader(topic, partition)
        if owner is None:
            return NO_LEADER
        address = self._address(owner.node_id)
        if address is not None:
            self.endpoints[owner.node_id] = address
        return owner.node_id, as_leader_epoch(owner.epoch)

    def _address(self, node_id: int) -> tuple[str, int] | None:
        if self._addresses is None:  # once per response, only if a hint is asked for
            self._addresses = {m.node: broker_address(m) for m in self._node.live_brokers()}
        return self._addresses.get(node_id)

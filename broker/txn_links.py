"""Where a transaction's markers go, and how a partition leader verifies a transaction.

Owns: writing a transaction's COMMIT/ABORT markers into each of its partitions (this
broker's own through the log, another broker's by WriteTxnMarkers v1 to the
partition's leader) and ending its offsets in each consumer group (the group
coordinator's stream; remotely, a WriteTxnMarkers entry for `__consumer_offsets`
partition = the group's slot, as Kafka's coordinator marks its offsets partitions);
and asking a remote transaction coordinator whether a partition is in a producer's
open transaction (AddPartitionsToTxn v4, verify_only: KIP-890 part 1).

Guarantees: a marker counts as written only once durable on its leader (acked by it,
or by our own produce path); leaders between owners or moving are retried with
backoff for up to `MARKER_PATIENCE_S`, then `MarkerFailed` (the coordinator keeps the
transaction in Prepare* and its timer tries again). A deleted topic's partition needs
no marker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from tidelog.broker.peer_client import PeerClient, PeerError
from tidelog.broker.transactions.coordinator import MarkerFailed
from tidelog.broker.transactions.state import Markers
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build, request_module
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import LogStore
from tidelog.storage.meta_state import GROUP_TOPIC, Member
from tidelog.storage.ownership import group_slot

log = logging.getLogger(__name__)

MARKER_PATIENCE_S = 10.0
WRITE_TXN_MARKERS, ADD_PARTITIONS_TO_TXN = 27, 24
_RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0)
_DONE = frozenset({ErrorCode.none, ErrorCode.unknown_topic_or_partition})

Target = tuple[str, int]  # (topic, partition); (__consumer_offsets, slot) for groups


class TxnLinks:
    def __init__(self, store: LogStore, peers: PeerClient) -> None:
        self._store = store
        self._peers = peers

    async def write_markers(self, markers: Markers, coordinator_epoch: int) -> None:
        targets: set[Target] = set(markers.partitions)
        groups_by_slot: dict[int, set[str]] = {}
        for group in markers.groups:
            groups_by_slot.setdefault(group_slot(group), set()).add(group)
            targets.add((GROUP_TOPIC, group_slot(group)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MARKER_PATIENCE_S
        attempt = 0
        last: dict[Target, ErrorCode] = {}
        while targets:
            results = await self._write_once(markers, coordinator_epoch, targets, groups_by_slot)
            last = {t: c for t, c in results.items() if c not in _DONE}
            targets = set(last)
            if not targets:
                return
            if loop.time() >= deadline:
                break
            await asyncio.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
            attempt += 1
            await self._store.fresh_metadata()
        shown = ",".join(f"{t}-{p}:{c.name}" for (t, p), c in sorted(last.items())[:8])
        raise MarkerFailed(f"markers not written targets={shown}")

    async def _write_once(
        self,
        markers: Markers,
        coordinator_epoch: int,
        targets: set[Target],
        groups_by_slot: dict[int, set[str]],
    ) -> dict[Target, ErrorCode]:
        results: dict[Target, ErrorCode] = {}
        remote: dict[Member, list[Target]] = {}
        local: list[tuple[Target, asyncio.Future[None]]] = []
        store = self._store
        meta = store.meta.state
        for target in sorted(targets):
            topic, index = target
            if topic != GROUP_TOPIC and meta.topics.get(topic) is None:
                results[target] = ErrorCode.none  # deleted: nothing to mark
                continue
            if store.serves(target):
                fut: asyncio.Future[None]
                if topic == GROUP_TOPIC:
                    fut = asyncio.ensure_future(
                        store.txns.end_offsets(
                            markers.producer_id,
                            markers.producer_epoch,
                            groups_by_slot.get(index, ()),
                            markers.commit,
                        )
                    )
                else:
                    try:
                        pending = store.produce.append_marker(
                            topic,
                            index,
                            producer_id=markers.producer_id,
                            producer_epoch=markers.producer_epoch,
                            commit=markers.commit,
                            coordinator_epoch=coordinator_epoch,
                            timestamp=store.clock.wall_ms(),
                        )
                    except StoreError as exc:
                        results[target] = exc.code
                        continue
                    fut = asyncio.ensure_future(pending.durable)
                local.append((target, fut))
                continue
            owner = meta.owner_of(target)
            if owner is None:
                results[target] = ErrorCode.leader_not_available
                continue
            remote.setdefault(owner, []).append(target)
        calls = [
            self._remote(owner, markers, coordinator_epoch, ts) for owner, ts in remote.items()
        ]
        for answers in await asyncio.gather(*calls):
            results.update(answers)
        for target, fut in local:
            try:
                await fut
                results[target] = ErrorCode.none
            except StoreError as exc:
                results[target] = exc.code
        return results

    async def _remote(
        self, owner: Member, markers: Markers, coordinator_epoch: int, targets: Iterable[Target]
    ) -> dict[Target, ErrorCode]:
        mod = request_module(WRITE_TXN_MARKERS, 1)
        targets = list(targets)
        by_topic = _by_topic(targets)
        request = build(
            mod,
            "WriteTxnMarkersRequest",
            markers=(
                build(
                    mod,
                    "WritableTxnMarker",
                    producer_id=markers.producer_id,
                    producer_epoch=markers.producer_epoch,
                    transaction_result=markers.commit,
                    topics=tuple(
                        build(mod, "WritableTxnMarkerTopic", name=t, partition_indexes=tuple(ps))
                        for t, ps in by_topic.items()
                    ),
                    coordinator_epoch=coordinator_epoch,
                ),
            ),
        )
        failed = {t: ErrorCode.leader_not_available for t in targets}
        try:
            answer = await self._peers.call(owner.host, owner.port, request)
        except PeerError as exc:
            log.info("marker write to peer failed node=%d reason=%s", owner.node, exc)
            return failed
        results: dict[Target, ErrorCode] = {}
        for marker in answer.markers:
            for topic in marker.topics:
                for part in topic.partitions:
                    results[(topic.name, part.partition_index)] = ErrorCode(part.error_code)
        return {t: results.get(t, ErrorCode.unknown_server_error) for t in failed}

    async def verify_remote(
        self,
        coordinator: Member,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[Target],
    ) -> dict[Target, ErrorCode]:
        """Ask the coordinator whether these partitions are in the open transaction."""
        wanted = sorted(set(partitions))
        mod = request_module(ADD_PARTITIONS_TO_TXN, 4)
        by_topic = _by_topic(wanted)
        request = build(
            mod,
            "AddPartitionsToTxnRequest",
            transactions=(
                build(
                    mod,
                    "AddPartitionsToTxnTransaction",
                    transactional_id=transactional_id,
                    producer_id=producer_id,
                    producer_epoch=producer_epoch,
                    verify_only=True,
                    topics=tuple(
                        build(mod, "AddPartitionsToTxnTopic", name=t, partitions=tuple(ps))
                        for t, ps in by_topic.items()
                    ),
                ),
            ),
        )
        try:
            answer = await self._peers.call(coordinator.host, coordinator.port, request)
        except PeerError as exc:
            log.info("transaction verification failed node=%d reason=%s", coordinator.node, exc)
            return dict.fromkeys(wanted, ErrorCode.not_coordinator)
        if answer.error_code != ErrorCode.none:
            return dict.fromkeys(wanted, ErrorCode(answer.error_code))
        results: dict[Target, ErrorCode] = {}
        for txn in answer.results_by_transaction:
            for topic in txn.topic_results:
                for part in topic.results_by_partition:
                    results[(topic.name, part.partition_index)] = ErrorCode(
                        part.partition_error_code
                    )
        return {t: results.get(t, ErrorCode.invalid_txn_state) for t in wanted}


def _by_topic(targets: Iterable[Target]) -> dict[str, list[int]]:
    """Partition indexes per topic, as Kafka's requests list them."""
    out: dict[str, list[int]] = {}
    for topic, index in targets:
        out.setdefault(topic, []).append(index)
    return out

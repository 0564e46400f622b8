"""Fetch (1) v4-16: read committed batches, long-polling up to max_wait for min_bytes.

Batches go out exactly as stored (compression and all). Limits follow Kafka: the
first non-empty partition may exceed max_bytes by one batch so a consumer always makes
progress; later partitions stop when the response budget is spent; no answer holds
more than `--fetch-max-bytes` (Kafka's fetch.max.bytes) beyond that first batch,
whatever the request asked. read_committed (isolation_level 1) reads stop at the last
stable offset and carry the aborted transactions of what they return; the client
drops those records (Kafka sends aborted data rather than withholding it). Fetch sessions
(KIP-227) are not kept: session_id 0 tells clients to send full requests.
A `current_leader_epoch` (v9+) other than ours answers FENCED_LEADER_EPOCH or
UNKNOWN_LEADER_EPOCH; `last_fetched_epoch`
(v12, followers' divergence check) is not looked at: tidelog has no followers, and
consumers validate through OffsetForLeaderEpoch (docs/leader-epochs.md).

From v13 topics are named by topic id (KIP-516), in the request and the answer: an id
no topic has answers UNKNOWN_TOPIC_ID for its partitions; a known one is authorized
by its topic's name, as Kafka does (an id without READ: TOPIC_AUTHORIZATION_FAILED).
v15's replica_state is a follower's and not looked at. From v16 a partition answered
NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries its current leader and the
response that leader's address (KIP-951, broker/handlers/leader_hints.py). A partition
with an error always carries an empty record set, never a null one.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, topic_allowed
from tidelog.broker.handlers.base import Handler, answer_error
from tidelog.broker.handlers.leader_hints import FETCH_HINTED, LeaderHints
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.fetch_response import (
    FetchPartitionResult,
    NodeEndpoint,
    encode_fetch_response,
)
from tidelog.protocol.headers import RequestHeader
from tidelog.storage.errors import StoreError
from tidelog.storage.leader_epochs import check_current_epoch
from tidelog.storage.log_reader import ReadResult

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

_MAX_WAIT_CAP_S = 30.0
READ_COMMITTED = 1  # isolation_level: only below the last stable offset
FIRST_TOPIC_ID_VERSION = 13  # KIP-516: topics named by id, not name
FIRST_LEADER_HINT_VERSION = 16  # KIP-951: current_leader and node_endpoints

_Result = tuple[str, int, ErrorCode, ReadResult | None]


class FetchHandler(Handler):
    api_key, min_version, max_version = 1, 4, 16
    read_only = True
    # Clients keep one fetch in flight per broker; a client that pipelines more would
    # have each answer (up to --fetch-max-bytes) held at once.
    max_in_flight = 2

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        by_id = header.api_version >= FIRST_TOPIC_ID_VERSION
        names = self._names(node, request) if by_id else {}
        unknown: list[tuple[uuid.UUID, int]] = []  # partitions of ids no topic has
        topics: list[tuple[str, Any]] = []
        for t in request.topics:
            name = names[t.topic_id] if by_id else t.topic
            if name is None:
                unknown += [(t.topic_id, p.partition) for p in t.partitions]
            else:
                topics.append((name, t))
        wanted = [
            (name, p.partition, p.fetch_offset, p.partition_max_bytes)
            for name, t in topics
            for p in t.partitions
        ]
        refused: list[_Result] = []
        if node.security.enabled:
            readable = {t for t in {w[0] for w in wanted} if topic_allowed(node, Op.READ, t)}
            refused = [
                (w[0], w[1], ErrorCode.topic_authorization_failed, None)
                for w in wanted
                if w[0] not in readable
            ]
            wanted = [w for w in wanted if w[0] in readable]
        epochs = {
            (name, p.partition): p.current_leader_epoch
            for name, t in topics
            for p in t.partitions
            if getattr(p, "current_leader_epoch", -1) >= 0
        }
        committed = int(getattr(request, "isolation_level", 0)) == READ_COMMITTED
        max_wait = min(request.max_wait.total_seconds(), _MAX_WAIT_CAP_S)
        deadline = time.monotonic() + max(0.0, max_wait)
        while True:
            results, total, errored = await self._read_all(
                node, wanted, request.max_bytes, committed, epochs
            )
            remaining = deadline - time.monotonic()
            if total >= request.min_bytes or errored or refused or unknown or remaining <= 0:
                break
            if node.stopping:
                break
            await node.wait_for_data([(t, p) for t, p, _, _ in wanted], remaining)
        ids = {name: topic_id for topic_id, name in names.items() if name is not None}
        return self._response(node, header, results + refused, ids, unknown)

    def _names(self, node: Node, request: Any) -> dict[uuid.UUID, str | None]:
        """Each topic id the request names -> its topic's name (None: no such topic)."""
        names: dict[uuid.UUID, str | None] = {}
        for t in request.topics:
            if t.topic_id not in names:
                names[t.topic_id] = node.topic_name(t.topic_id)
        return names

    async def _read_all(
        self,
        node: Node,
        wanted: list[tuple[str, int, int, int]],
        max_bytes: int,
        committed: bool,
        epochs: dict[tuple[str, int], int],
    ) -> tuple[list[_Result], int, bool]:
        results: list[_Result] = []
        cap = node.config.fetch_max_bytes  # what one answer may hold, whatever was asked
        budget = min(max_bytes, cap) if max_bytes > 0 else cap
        total = 0
        errored = False
        for topic, partition, offset, _ in wanted:  # their GETs run side by side
            node.prefetch(topic, partition, offset)
        for topic, partition, offset, part_max in wanted:
            limit = min(part_max, budget) if total else min(part_max, cap)
            if total and budget <= 0:
                results.append(
                    (topic, partition, ErrorCode.none, self._empty(node, topic, partition))
                )
                continue
            code = self._epoch_check(node, topic, partition, epochs)
            if code != ErrorCode.none:
                results.append((topic, partition, code, None))
                errored = True
                continue
            try:
                res = await node.read(topic, partition, offset, max(limit, 1), committed=committed)
            except StoreError as exc:
                results.append((topic, partition, exc.code, None))
                errored = True
                continue
            total += res.size
            budget -= res.size
            results.append((topic, partition, ErrorCode.none, res))
        return results, total, errored

    def _epoch_check(
        self, node: Node, topic: str, partition: int, epochs: dict[tuple[str, int], int]
    ) -> ErrorCode:
        requested = epochs.get((topic, partition), -1)
        part = node.partition_log(topic, partition) if requested >= 0 else None
        return check_current_epoch(part.leader_epoch, requested) if part else ErrorCode.none

    def _empty(self, node: Node, topic: str, partition: int) -> ReadResult | None:
        part = node.partition_log(topic, partition)
        if part is None:
            return None
        return ReadResult(part.high_watermark, part.log_start, [], part.last_stable_offset)

    def _response(
        self,
        node: Node,
        header: RequestHeader,
        results: list[_Result],
        ids: dict[str, uuid.UUID],
        unknown: list[tuple[uuid.UUID, int]],
    ) -> list[bytes | bytearray | memoryview]:
        # Encoded here, not through kio: record buffers go to the socket uncopied.
        by_topic: dict[str | uuid.UUID, list[FetchPartitionResult]] = {}
        first_error = next((int(code) for _, _, code, _ in results if code), 0)
        if unknown and not first_error:
            first_error = ErrorCode.unknown_topic_id
        if first_error:
            answer_error.set(first_error)
        hints = LeaderHints(node) if header.api_version >= FIRST_LEADER_HINT_VERSION else None
        for topic, partition, code, res in results:
            if res is not None and res.parts:
                node.traffic.bytes_out(topic, res.size)
            by_topic.setdefault(ids.get(topic, topic), []).append(
                FetchPartitionResult(
                    partition_index=partition,
                    error_code=code,
                    high_watermark=res.high_watermark if res else -1,
                    last_stable_offset=res.last_stable_offset if res else -1,
                    log_start_offset=res.log_start_offset if res else -1,
                    # An error answers an empty record set, never null: Kafka sends
                    # MemoryRecords.EMPTY and librdkafka fails to parse a null one
                    # ("invalid MessageSetSize -1"), so it never saw the error and
                    # never reset its offset after OFFSET_OUT_OF_RANGE.
                    records=res.parts if res else (),
                    aborted=(
                        [(a.producer_id, a.first_offset) for a in res.aborted]
                        if res and res.aborted is not None
                        else None
                    ),
                    current_leader=(
                        hints.current_leader(topic, partition)
                        if hints is not None and code in FETCH_HINTED
                        else None
                    ),
                )
            )
        for topic_id, partition in unknown:
            by_topic.setdefault(topic_id, []).append(
                FetchPartitionResult(partition, ErrorCode.unknown_topic_id, -1, -1, -1, ())
            )
        endpoints = sorted(hints.endpoints.items()) if hints else []
        return encode_fetch_response(
            header.correlation_id,
            header.api_version,
            throttle_ms=0,
            error_code=ErrorCode.none,
            session_id=0,
            topics=list(by_topic.items()),
            node_endpoints=[NodeEndpoint(n, host, port) for n, (host, port) in endpoints],
        )

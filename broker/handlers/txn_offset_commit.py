"""TxnOffsetCommit (28) v0-3: offsets that become the group's only if the transaction
commits.

Sent to the group's coordinator. The offsets are staged in its stream, per group and
producer id (storage/txn_store.py); the transaction's COMMIT marker for the group
makes them committed offsets, ABORT drops them (docs/transactions.md). The group must
be in the producer's open transaction (AddOffsetsToTxn) and its epoch current, or
nothing is staged: this broker checks when it coordinates the transaction too, else it
asks the coordinator (AddPartitionsToTxn v4 verify_only, naming the group by its
`__consumer_offsets` partition, as Kafka's KIP-890 does).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, group_allowed, topic_allowed, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.offset_commit import MAX_METADATA_CHARS
from tidelog.broker.handlers.txn_errors import for_version
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError
from tidelog.storage.meta_state import GROUP_TOPIC
from tidelog.storage.ownership import group_slot

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class TxnOffsetCommitHandler(Handler):
    api_key, min_version, max_version = 28, 0, 3

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        group: str = request.group_id
        pid, epoch = int(request.producer_id), int(request.producer_epoch)
        errors: dict[tuple[str, int], ErrorCode] = {}
        rows: list[tuple[str, int, int, int, str | None]] = []
        common = ErrorCode.none
        if not txn_allowed(node, Op.WRITE, request.transactional_id):
            common = ErrorCode.transactional_id_authorization_failed
        elif not group_allowed(node, Op.READ, group):
            common = ErrorCode.group_authorization_failed
        elif not group:
            common = ErrorCode.invalid_group_id
        elif not node.coordinates(group):
            common = ErrorCode.not_coordinator
        else:
            # Asked of the coordinator, here or by AddPartitionsToTxn v4 verify_only on
            # the broker that has the id: a fenced producer's offsets are never staged.
            key = (GROUP_TOPIC, group_slot(group))
            codes = await node.verify_txn(request.transactional_id, pid, epoch, [key])
            common = codes.get(key, ErrorCode.invalid_txn_state)
        for topic in request.topics:
            for p in topic.partitions:
                key = (topic.name, p.partition_index)
                metadata = p.committed_metadata or ""
                if common != ErrorCode.none:
                    errors[key] = common
                elif not topic_allowed(node, Op.READ, topic.name):
                    errors[key] = ErrorCode.topic_authorization_failed
                elif not node.partition_exists(key):
                    errors[key] = ErrorCode.unknown_topic_or_partition
                elif len(metadata) > MAX_METADATA_CHARS:
                    errors[key] = ErrorCode.offset_metadata_too_large
                else:
                    epoch_of_leader = int(getattr(p, "committed_leader_epoch", -1))
                    rows.append((*key, int(p.committed_offset), epoch_of_leader, metadata))
                    errors[key] = ErrorCode.none
        if rows:
            try:
                await node.stage_txn_offsets(group, pid, epoch, rows)
            except StoreError as exc:
                for t, p, *_ in rows:
                    errors[(t, p)] = exc.code
        mod = response_module(self.api_key, header.api_version)
        by_topic: dict[str, list[tuple[int, ErrorCode]]] = {}
        for (t, p), code in errors.items():
            by_topic.setdefault(t, []).append((p, for_version(code, header.api_version)))
        return build(
            mod,
            "TxnOffsetCommitResponse",
            throttle_time=datetime.timedelta(0),
            topics=tuple(
                build(
                    mod,
                    "TxnOffsetCommitResponseTopic",
                    name=t,
                    partitions=tuple(
                        build(
                            mod, "TxnOffsetCommitResponsePartition", partition_index=p, error_code=c
                        )
                        for p, c in parts
                    ),
                )
                for t, parts in by_topic.items()
            ),
        )

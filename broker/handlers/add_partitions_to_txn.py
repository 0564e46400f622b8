"""AddPartitionsToTxn (24) v0-4: partitions join the producer's transaction.

v0-3 come from producers: the coordinator adds the partitions (a partition of a topic
that does not exist fails with UNKNOWN_TOPIC_OR_PARTITION and the others are not
attempted, as in Kafka). v4 is broker to broker: with `verify_only` a partition
leader asks whether partitions are in a producer's open transaction before it appends
a batch that would open one there (KIP-890 part 1), and a group coordinator asks
whether a group is, naming it by its `__consumer_offsets` partition (docs/transactions.md).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed, topic_allowed, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.txn_errors import for_version
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

Results = dict[str, dict[int, ErrorCode]]


class AddPartitionsToTxnHandler(Handler):
    api_key, min_version, max_version = 24, 0, 4

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        if header.api_version < 4:
            results = await self._add(
                node,
                request.v3_and_below_transactional_id,
                int(request.v3_and_below_producer_id),
                int(request.v3_and_below_producer_epoch),
                [(t.name, tuple(t.partitions)) for t in request.v3_and_below_topics],
                header.api_version,
            )
            return build(
                mod,
                "AddPartitionsToTxnResponse",
                throttle_time=datetime.timedelta(0),
                results_by_topic_v3_and_below=self._topics(mod, results),
            )
        if not cluster_allowed(node, Op.CLUSTER_ACTION):
            # v4+ is what brokers send one another (Kafka: CLUSTER_ACTION on the cluster).
            return build(
                mod,
                "AddPartitionsToTxnResponse",
                throttle_time=datetime.timedelta(0),
                error_code=ErrorCode.cluster_authorization_failed,
                results_by_transaction=(),
            )
        answers = []
        for txn in request.transactions:
            wanted = [(t.name, tuple(t.partitions)) for t in txn.topics]
            if txn.verify_only:
                results = self._verify(node, txn, wanted)
            else:
                results = await self._add(
                    node,
                    txn.transactional_id,
                    int(txn.producer_id),
                    int(txn.producer_epoch),
                    wanted,
                    header.api_version,
                )
            answers.append(
                build(
                    mod,
                    "AddPartitionsToTxnResult",
                    transactional_id=txn.transactional_id,
                    topic_results=self._topics(mod, results),
                )
            )
        return build(
            mod,
            "AddPartitionsToTxnResponse",
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.none,
            results_by_transaction=tuple(answers),
        )

    async def _add(
        self,
        node: Node,
        txn_id: str,
        pid: int,
        epoch: int,
        wanted: list[tuple[str, tuple[int, ...]]],
        version: int,
    ) -> Results:
        if not txn_allowed(node, Op.WRITE, txn_id):
            code = ErrorCode.transactional_id_authorization_failed
            return {t: dict.fromkeys(ps, code) for t, ps in wanted}
        denied = {t for t, _ in wanted if not topic_allowed(node, Op.WRITE, t)}
        if denied:
            return {
                t: dict.fromkeys(
                    ps,
                    ErrorCode.topic_authorization_failed
                    if t in denied
                    else ErrorCode.operation_not_attempted,
                )
                for t, ps in wanted
            }
        missing = {(t, p) for t, ps in wanted for p in ps if not node.partition_exists((t, p))}
        if missing:
            return {
                t: {
                    p: ErrorCode.unknown_topic_or_partition
                    if (t, p) in missing
                    else ErrorCode.operation_not_attempted
                    for p in ps
                }
                for t, ps in wanted
            }
        partitions = frozenset((t, p) for t, ps in wanted for p in ps)
        try:
            code = await node.txn_coordinator.add_partitions(txn_id, pid, epoch, partitions)
        except StoreError as exc:
            code = exc.code
        code = for_version(code, version)
        return {t: dict.fromkeys(ps, code) for t, ps in wanted}

    def _verify(self, node: Node, txn: Any, wanted: list[tuple[str, tuple[int, ...]]]) -> Results:
        txn_id, pid, epoch = txn.transactional_id, int(txn.producer_id), int(txn.producer_epoch)
        if not node.coordinates_txn(txn_id):
            return {t: dict.fromkeys(ps, ErrorCode.not_coordinator) for t, ps in wanted}
        return {
            t: {p: node.verify_txn_here(txn_id, pid, epoch, (t, p)) for p in ps} for t, ps in wanted
        }

    def _topics(self, mod: Any, results: Results) -> tuple[Any, ...]:
        return tuple(
            build(
                mod,
                "AddPartitionsToTxnTopicResult",
                name=topic,
                results_by_partition=tuple(
                    build(
                        mod,
                        "AddPartitionsToTxnPartitionResult",
                        partition_index=p,
                        partition_error_code=code,
                    )
                    for p, code in parts.items()
                ),
            )
            for topic, parts in results.items()
        )

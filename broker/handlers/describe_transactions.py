"""DescribeTransactions (65) v0: the coordinator's view of each transactional id.

Per id: state, producer id and epoch, timeout, the start time of the open transaction
(-1 when none is open) and its partitions by topic (all of them, also in Prepare*:
markers are written together, not tracked one by one). An id whose slot another broker
coordinates is NOT_COORDINATOR (the client asks FindCoordinator key_type 1 again); one
this coordinator does not know, or knows as Dead, is TRANSACTIONAL_ID_NOT_FOUND, as in
Kafka.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.transactions.model import TxnStatus
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from types import ModuleType

    from tidelog.broker.handlers.context import Node
    from tidelog.broker.transactions.model import TxnMeta


def _time(ms: int) -> datetime.datetime:
    """A datetime_i64 field kio writes back as exactly `ms` (also -1)."""
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


class DescribeTransactionsHandler(Handler):
    api_key, min_version, max_version = 65, 0, 0
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        states = []
        for txn_id in request.transactional_ids:
            meta = None
            if not txn_allowed(node, Op.DESCRIBE, txn_id):
                code = ErrorCode.transactional_id_authorization_failed
            elif not node.coordinates_txn(txn_id):
                code = ErrorCode.not_coordinator
            elif (meta := node.txn_coordinator.meta(txn_id)) is None or (
                meta.status == TxnStatus.DEAD
            ):
                code = ErrorCode.transactional_id_not_found
            else:
                code = ErrorCode.none
            states.append(_described(mod, txn_id, code, meta if code == ErrorCode.none else None))
        return build(
            mod,
            "DescribeTransactionsResponse",
            throttle_time=datetime.timedelta(0),
            transaction_states=tuple(states),
        )


def _described(mod: ModuleType, txn_id: str, code: ErrorCode, meta: TxnMeta | None) -> Any:
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(meta.partitions if meta else ()):
        by_topic.setdefault(topic, []).append(partition)
    return build(
        mod,
        "TransactionState",
        error_code=code,
        transactional_id=txn_id,
        transaction_state=meta.status.value if meta else "",
        transaction_timeout=datetime.timedelta(milliseconds=meta.timeout_ms if meta else 0),
        transaction_start_time=_time(meta.txn_start_ms if meta else -1),
        producer_id=meta.producer_id if meta else -1,
        producer_epoch=meta.producer_epoch if meta else -1,
        topics=tuple(
            build(mod, "TopicData", topic=topic, partitions=tuple(parts))
            for topic, parts in by_topic.items()
        ),
    )

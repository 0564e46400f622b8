"""ListTransactions (66) v0-1: the transactional ids this broker coordinates now.

Each id's producer id and state (Kafka's names: broker/transactions/model.py TxnStatus).
Filters, all of which must match: `state_filters` (exact names, as Kafka: a name it does
not know is echoed in `unknown_state_filters` and matches nothing), `producer_id_filters`
and, from v1, `duration_filter` (ms, < 0: off): only transactions that started and have
been open longer than that on the coordinator's clock. Dead ids are never listed. A
client wanting the whole cluster asks every broker (`tidelog transactions list` does).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.transactions.model import TxnMeta, TxnStatus
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

_KNOWN_STATES = frozenset(s.value for s in TxnStatus)


class ListTransactionsHandler(Handler):
    api_key, min_version, max_version = 66, 0, 1
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        names = tuple(request.state_filters)
        states = {n for n in names if n in _KNOWN_STATES}
        pids = {int(p) for p in request.producer_id_filters}
        duration = int(getattr(request, "duration_filter", -1))
        now = node.now_ms()

        def wanted(meta: TxnMeta) -> bool:
            if meta.status == TxnStatus.DEAD:
                return False
            if not txn_allowed(node, Op.DESCRIBE, meta.transactional_id):
                return False
            if names and meta.status.value not in states:
                return False
            if pids and meta.producer_id not in pids:
                return False
            return duration < 0 or (meta.txn_start_ms >= 0 and now - meta.txn_start_ms > duration)

        listed = sorted(
            (m for m in node.txn_coordinator.served() if wanted(m)),
            key=lambda m: m.transactional_id,
        )
        return build(
            mod,
            "ListTransactionsResponse",
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.none,
            unknown_state_filters=tuple(n for n in names if n not in _KNOWN_STATES),
            transaction_states=tuple(
                build(
                    mod,
                    "TransactionState",
                    transactional_id=m.transactional_id,
                    producer_id=m.producer_id,
                    transaction_state=m.status.value,
                )
                for m in listed
            ),
        )

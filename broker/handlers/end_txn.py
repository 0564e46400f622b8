"""EndTxn (26) v0-3: commit or abort the producer's open transaction.

Answered once the decision (PrepareCommit / PrepareAbort) has landed in the bucket, as
Kafka answers it; the markers and the completion follow under the transactional id's
lock, so the producer's next call waits for them (broker/transactions/coordinator.py).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.txn_errors import for_version
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class EndTxnHandler(Handler):
    api_key, min_version, max_version = 26, 0, 3

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        try:
            if not txn_allowed(node, Op.WRITE, request.transactional_id):
                raise StoreError(ErrorCode.transactional_id_authorization_failed, "no WRITE")
            code = await node.txn_coordinator.end_txn(
                request.transactional_id,
                int(request.producer_id),
                int(request.producer_epoch),
                bool(request.committed),
            )
        except StoreError as exc:
            code = exc.code
        mod = response_module(self.api_key, header.api_version)
        return build(
            mod,
            "EndTxnResponse",
            throttle_time=datetime.timedelta(0),
            error_code=for_version(code, header.api_version),
        )

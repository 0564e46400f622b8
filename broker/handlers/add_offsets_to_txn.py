"""AddOffsetsToTxn (25) v0-3: the transaction will commit offsets of this group.

The coordinator records the group in the transaction, so its markers end the offsets
TxnOffsetCommit staged there (docs/transactions.md).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, group_allowed, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.txn_errors import for_version
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class AddOffsetsToTxnHandler(Handler):
    api_key, min_version, max_version = 25, 0, 3

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        try:
            if not txn_allowed(node, Op.WRITE, request.transactional_id):
                code = ErrorCode.transactional_id_authorization_failed
            elif not group_allowed(node, Op.READ, request.group_id):
                code = ErrorCode.group_authorization_failed
            elif not request.group_id:
                code = ErrorCode.invalid_group_id
            else:
                code = await node.txn_coordinator.add_group(
                    request.transactional_id,
                    int(request.producer_id),
                    int(request.producer_epoch),
                    request.group_id,
                )
        except StoreError as exc:
            code = exc.code
        mod = response_module(self.api_key, header.api_version)
        return build(
            mod,
            "AddOffsetsToTxnResponse",
            throttle_time=datetime.timedelta(0),
            error_code=for_version(code, header.api_version),
        )

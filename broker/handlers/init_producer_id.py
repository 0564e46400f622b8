"""InitProducerId (22) v0-4: producer ids unique across brokers and restarts.

Ids come in blocks recorded in the commit log, so no two brokers (or two lives of
one) hand out the same id. Without a transactional id, an idempotent producer
re-initialising with its id and epoch (v3+, KIP-360) gets its epoch bumped, so batches
it retries keep its id; a call without one gets a new id. (The bump is not checked
against who owns the id: docs/transactions.md, "Not yet".) With a transactional id,
the transaction coordinator (broker/transactions/) answers: it bumps the id's epoch,
fencing older producers, and aborts a transaction left open.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, idempotent_allowed, txn_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.txn_errors import for_version
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


_MAX_EPOCH = 32767


class InitProducerIdHandler(Handler):
    api_key, min_version, max_version = 22, 0, 4

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        code, pid, epoch = ErrorCode.none, -1, -1
        try:
            if request.transactional_id is None:
                if not idempotent_allowed(node):
                    raise StoreError(ErrorCode.cluster_authorization_failed, "no IDEMPOTENT_WRITE")
                old_pid = int(getattr(request, "producer_id", -1))
                old_epoch = int(getattr(request, "producer_epoch", -1))
                if old_pid >= 0 and 0 <= old_epoch < _MAX_EPOCH - 1:
                    pid, epoch = old_pid, old_epoch + 1
                else:
                    pid, epoch = await node.allocate_producer_id(), 0
            else:
                if not txn_allowed(node, Op.WRITE, request.transactional_id):
                    raise StoreError(ErrorCode.transactional_id_authorization_failed, "no WRITE")
                timeout_ms = int(request.transaction_timeout.total_seconds() * 1000)
                outcome = await node.txn_coordinator.init_producer(
                    request.transactional_id,
                    timeout_ms,
                    int(getattr(request, "producer_id", -1)),
                    int(getattr(request, "producer_epoch", -1)),
                )
                code = for_version(outcome.error, header.api_version, 4)
                if code == ErrorCode.none:
                    pid, epoch = outcome.producer_id, outcome.producer_epoch
        except StoreError as exc:
            code, pid, epoch = exc.code, -1, -1
        mod = response_module(self.api_key, header.api_version)
        return build(
            mod,
            "InitProducerIdResponse",
            throttle_time=datetime.timedelta(0),
            error_code=code,
            producer_id=pid,
            producer_epoch=epoch,
        )

"""InitProducerId (22) v0-4: producer ids unique across brokers and restarts.

Ids come in blocks recorded in the commit log, so no two brokers (or two lives of
one) hand out the same id. An existing idempotent producer re-initialising (v3+,
KIP-360) gets its epoch bumped. Transactions are not supported yet.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
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
        if request.transactional_id is not None:
            code = ErrorCode.transactional_id_authorization_failed
        else:
            old_pid = getattr(request, "producer_id", -1)
            old_epoch = getattr(request, "producer_epoch", -1)
            try:
                if old_pid >= 0 and 0 <= old_epoch < _MAX_EPOCH - 1:
                    pid, epoch = old_pid, old_epoch + 1
                else:
                    pid, epoch = await node.allocate_producer_id(), 0
            except StoreError as exc:
                code = exc.code
        mod = response_module(self.api_key, header.api_version)
        return build(
            mod,
            "InitProducerIdResponse",
            throttle_time=datetime.timedelta(0),
            error_code=code,
            producer_id=pid,
            producer_epoch=epoch,
        )

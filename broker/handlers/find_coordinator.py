"""FindCoordinator (10) v0-4, batched keys in v4: the owner of the group's slot.

Groups are spread over the brokers by slot (storage/meta_state.py GROUP_SLOTS), and a
slot is owned like a partition; the answer is the live owner, or COORDINATOR_NOT_AVAILABLE
while the slot is between owners (clients retry).

A transactional id (key_type 1) belongs to the same slots (docs/transactions.md), so
its coordinator is found the same way. Any other key type is INVALID_REQUEST.

Advertising FindCoordinator matters even before consumer groups do: librdkafka only
compresses with lz4 (and enables other features) when the broker offers it.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, group_allowed, txn_allowed
from tidelog.broker.handlers.base import Handler, broker_address, client_listener
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

GROUP, TRANSACTION = 0, 1


class FindCoordinatorHandler(Handler):
    api_key, min_version, max_version = 10, 0, 4

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        key_type = getattr(request, "key_type", GROUP)
        await node.fresh_metadata()  # a client looking may mean a slot just moved

        def answer(key: str) -> tuple[ErrorCode, str | None, int, str, int]:
            if key_type not in (GROUP, TRANSACTION):
                return ErrorCode.invalid_request, f"unknown key_type={key_type}", -1, "", -1
            if key_type == GROUP and not group_allowed(node, Op.DESCRIBE, key):
                return ErrorCode.group_authorization_failed, None, -1, "", -1
            if key_type == TRANSACTION and not txn_allowed(node, Op.DESCRIBE, key):
                return ErrorCode.transactional_id_authorization_failed, None, -1, "", -1
            owner = node.coordinator_of(key)
            if owner is None:
                return ErrorCode.coordinator_not_available, "slot moving", -1, "", -1
            address = broker_address(owner)
            if address is None:
                message = f"coordinator has no listener {client_listener.get()}"
                return ErrorCode.coordinator_not_available, message, -1, "", -1
            return ErrorCode.none, None, owner.node, address[0], address[1]

        if header.api_version >= 4:
            return build(
                mod,
                "FindCoordinatorResponse",
                throttle_time=datetime.timedelta(0),
                coordinators=tuple(
                    build(
                        mod,
                        "Coordinator",
                        key=key,
                        node_id=owner_id,
                        host=host,
                        port=port,
                        error_code=code,
                        error_message=message,
                    )
                    for key in request.coordinator_keys
                    for code, message, owner_id, host, port in [answer(key)]
                ),
            )
        code, message, owner_id, host, port = answer(request.key)
        return build(
            mod,
            "FindCoordinatorResponse",
            throttle_time=datetime.timedelta(0),
            error_code=code,
            error_message=message,
            node_id=owner_id,
            host=host,
            port=port,
        )

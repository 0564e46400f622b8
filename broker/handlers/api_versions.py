"""ApiVersions (18) v0-3: the API ranges tidelog implements, from the handler table."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class ApiVersionsHandler(Handler):
    api_key, min_version, max_version = 18, 0, 3
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        keys = tuple(
            build(mod, "ApiVersion", api_key=k, min_version=lo, max_version=hi)
            for k, lo, hi in node.api_ranges()
        )
        return build(
            mod,
            "ApiVersionsResponse",
            error_code=ErrorCode.none,
            api_keys=keys,
            throttle_time=datetime.timedelta(0),
            supported_features=(),
            finalized_features_epoch=-1,
            finalized_features=(),
            zk_migration_ready=False,
        )

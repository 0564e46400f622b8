"""CreateAcls (30) v1-3: add ACLs to the security document (needs ALTER on the cluster).

Each creation is checked as Kafka checks it (broker/security/acl.py `validate`); a bad
one answers INVALID_REQUEST with Kafka's message in its own result, and the good ones
of the same request are still created, in one change of the document.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.security.acl import AclBinding, AclError
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class CreateAclsHandler(Handler):
    api_key, min_version, max_version = 30, 1, 3

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        outcomes: list[tuple[ErrorCode, str | None]] = []
        good: list[AclBinding] = []
        authorized = cluster_allowed(node, Op.ALTER)
        for c in request.creations:
            if not authorized:
                outcomes.append((ErrorCode.cluster_authorization_failed, None))
                continue
            binding = AclBinding.of(
                c.resource_type,
                c.resource_name,
                getattr(c, "resource_pattern_type", 3),
                c.principal,
                c.host,
                c.operation,
                c.permission_type,
            )
            try:
                binding.validate()
            except AclError as exc:
                outcomes.append((ErrorCode.invalid_request, str(exc)))
                continue
            good.append(binding)
            outcomes.append((ErrorCode.none, None))
        if good:
            try:
                await node.security.create_acls(good)
            except StoreError as exc:
                failed = (exc.code, str(exc))
                outcomes = [failed if code == ErrorCode.none else (code, m) for code, m in outcomes]
        return build(
            mod,
            "CreateAclsResponse",
            throttle_time=datetime.timedelta(0),
            results=tuple(
                build(mod, "AclCreationResult", error_code=code, error_message=message)
                for code, message in outcomes
            ),
        )

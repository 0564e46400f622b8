"""DeleteAcls (31) v1-3: remove the ACLs each filter matches (needs ALTER on the cluster).

All filters apply in one change of the security document; each result lists the
bindings its filter removed. A filter with an UNKNOWN part answers INVALID_REQUEST in
its own result and removes nothing.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.describe_acls import acl_filter
from tidelog.broker.security.acl import AclBinding, AclError, AclFilter
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class DeleteAclsHandler(Handler):
    api_key, min_version, max_version = 31, 1, 3

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        errors: list[tuple[ErrorCode, str | None]] = []
        good: list[AclFilter] = []
        authorized = cluster_allowed(node, Op.ALTER)
        for entry in request.filters:
            if not authorized:
                errors.append((ErrorCode.cluster_authorization_failed, None))
                continue
            f = acl_filter(entry)
            try:
                f.validate()
            except AclError as exc:
                errors.append((ErrorCode.invalid_request, str(exc)))
                continue
            good.append(f)
            errors.append((ErrorCode.none, None))
        matched: list[list[AclBinding]] = []
        if good:
            try:
                matched = await node.security.delete_acls(good)
            except StoreError as exc:
                errors = [
                    (exc.code, str(exc)) if c == ErrorCode.none else (c, m) for c, m in errors
                ]
        found = iter(matched)
        results = []
        for code, message in errors:
            removed = next(found, []) if code == ErrorCode.none else []
            results.append(
                build(
                    mod,
                    "DeleteAclsFilterResult",
                    error_code=code,
                    error_message=message,
                    matching_acls=tuple(self._matching(mod, b) for b in removed),
                )
            )
        return build(
            mod,
            "DeleteAclsResponse",
            throttle_time=datetime.timedelta(0),
            filter_results=tuple(results),
        )

    @staticmethod
    def _matching(mod: Any, b: AclBinding) -> Any:
        return build(
            mod,
            "DeleteAclsMatchingAcl",
            error_code=ErrorCode.none,
            error_message=None,
            resource_type=b.resource_type,
            resource_name=b.name,
            pattern_type=b.pattern_type,
            principal=b.principal,
            host=b.host,
            operation=b.operation,
            permission_type=b.permission,
        )

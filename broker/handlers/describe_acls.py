"""DescribeAcls (29) v1-3: the ACLs a filter matches (needs DESCRIBE on the cluster).

Answered from this broker's copy of the security document (at most one
`--security-refresh-ms` behind the bucket), grouped by resource pattern as Kafka groups
them. A filter with an UNKNOWN part answers INVALID_REQUEST.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.security.acl import AclBinding, AclError, AclFilter
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.errors import StoreError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


def acl_filter(entry: Any) -> AclFilter:
    """The filter of a DescribeAcls request or of one DeleteAcls filter."""
    return AclFilter.of(
        entry.resource_type_filter,
        entry.resource_name_filter,
        getattr(entry, "pattern_type_filter", 3),
        entry.principal_filter,
        entry.host_filter,
        entry.operation,
        entry.permission_type,
    )


class DescribeAclsHandler(Handler):
    api_key, min_version, max_version = 29, 1, 3
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        code, message, found = ErrorCode.none, None, ()
        if not cluster_allowed(node, Op.DESCRIBE):
            code = ErrorCode.cluster_authorization_failed
        else:
            wanted = acl_filter(request)
            try:
                wanted.validate()
                acls = await node.security.acls()
                found = self._resources(mod, [b for b in acls if wanted.matches(b)])
            except AclError as exc:
                code, message = ErrorCode.invalid_request, str(exc)
            except StoreError as exc:
                code, message = exc.code, str(exc)
        return build(
            mod,
            "DescribeAclsResponse",
            throttle_time=datetime.timedelta(0),
            error_code=code,
            error_message=message,
            resources=found,
        )

    @staticmethod
    def _resources(mod: Any, bindings: list[AclBinding]) -> tuple[Any, ...]:
        by_pattern: dict[tuple[int, str, int], list[AclBinding]] = {}
        for b in bindings:
            by_pattern.setdefault((b.resource_type, b.name, b.pattern_type), []).append(b)
        return tuple(
            build(
                mod,
                "DescribeAclsResource",
                resource_type=rtype,
                resource_name=name,
                pattern_type=ptype,
                acls=tuple(
                    build(
                        mod,
                        "AclDescription",
                        principal=b.principal,
                        host=b.host,
                        operation=b.operation,
                        permission_type=b.permission,
                    )
                    for b in group
                ),
            )
            for (rtype, name, ptype), group in by_pattern.items()
        )

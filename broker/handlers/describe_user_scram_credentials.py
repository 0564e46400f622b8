"""DescribeUserScramCredentials (50) v0: which users have SCRAM credentials, and how salted.

Kafka's semantics: DESCRIBE on the CLUSTER resource, else the whole answer is
CLUSTER_AUTHORIZATION_FAILED. No users (null or empty) lists every user with a
credential; a named user without one is RESOURCE_NOT_FOUND, a user named twice is
DUPLICATE_RESOURCE (one result for it). Each result lists the mechanisms (Kafka's
numbers) and their iteration counts; salts and keys never leave the broker. The
document is read from the bucket first if it changed (one HEAD otherwise), so a user
added on another broker or by `tidelog users` is seen at once.
"""

from __future__ import annotations

import datetime
from collections import Counter
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.security.credentials import MECHANISM_IDS, ScramCredential
from tidelog.broker.security.users import user_credentials
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.security_doc import SecurityDocError

if TYPE_CHECKING:
    from types import ModuleType

    from tidelog.broker.handlers.context import Node


class DescribeUserScramCredentialsHandler(Handler):
    api_key, min_version, max_version = 50, 0, 0
    read_only = True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        allowed = cluster_allowed(node, Op.DESCRIBE)
        if not allowed:
            return _answer(mod, ErrorCode.cluster_authorization_failed, None, ())
        try:
            await node.security.refresh()
        except (ObjectStoreError, SecurityDocError) as exc:
            return _answer(mod, ErrorCode.unknown_server_error, str(exc), ())
        users = user_credentials(node.security.doc)
        named = [u.name for u in request.users or ()]
        if not named:
            return _answer(mod, ErrorCode.none, None, [_found(mod, n, c) for n, c in users.items()])
        counts = Counter(named)
        results = []
        for name in dict.fromkeys(named):
            if counts[name] > 1:
                message = "Cannot describe SCRAM credentials for the same user twice"
                results.append(_failed(mod, name, ErrorCode.duplicate_resource, message))
            elif name not in users:
                message = "Attempt to describe a user credential that does not exist"
                results.append(_failed(mod, name, ErrorCode.resource_not_found, message))
            else:
                results.append(_found(mod, name, users[name]))
        return _answer(mod, ErrorCode.none, None, results)


def _answer(mod: ModuleType, code: ErrorCode, message: str | None, results: Any) -> Any:
    return build(
        mod,
        "DescribeUserScramCredentialsResponse",
        throttle_time=datetime.timedelta(0),
        error_code=code,
        error_message=message,
        results=tuple(results),
    )


def _found(mod: ModuleType, user: str, creds: dict[str, ScramCredential]) -> Any:
    infos = tuple(
        build(mod, "CredentialInfo", mechanism=MECHANISM_IDS[m], iterations=c.iterations)
        for m, c in creds.items()
    )
    return build(
        mod,
        "DescribeUserScramCredentialsResult",
        user=user,
        error_code=ErrorCode.none,
        error_message=None,
        credential_infos=infos,
    )


def _failed(mod: ModuleType, user: str, code: ErrorCode, message: str) -> Any:
    return build(
        mod,
        "DescribeUserScramCredentialsResult",
        user=user,
        error_code=code,
        error_message=message,
        credential_infos=(),
    )

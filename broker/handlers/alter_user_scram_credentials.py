"""AlterUserScramCredentials (51) v0: upsert and delete users' SCRAM credentials.

Kafka's semantics: ALTER on the CLUSTER resource, else every user of the request is
CLUSTER_AUTHORIZATION_FAILED. One result per user named. A user fails as a whole
(none of its alterations apply) when any of them is wrong: an empty name or iterations
outside 4096..16384 is UNACCEPTABLE_CREDENTIAL, a mechanism other than SCRAM-SHA-256
(1) or SCRAM-SHA-512 (2) is UNSUPPORTED_SASL_MECHANISM, the same (user, mechanism)
twice (in either list) is DUPLICATE_RESOURCE, deleting a credential that does not exist
is RESOURCE_NOT_FOUND. An upsertion carries the client's salt and SaltedPassword; the
broker keeps only RFC 5802's StoredKey and ServerKey (credentials.py). Every accepted
change of one request is one write of the security document (`node.security.change`).
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.authz import Op, cluster_allowed
from tidelog.broker.handlers.base import Handler
from tidelog.broker.security.credentials import (
    MAX_ITERATIONS,
    MECHANISM_IDS,
    MIN_ITERATIONS,
    credential_from_salted_password,
)
from tidelog.broker.security.users import delete_credential, set_credential
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.security_doc import SecurityDocError

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node

MECHANISMS = {number: name for name, number in MECHANISM_IDS.items()}


class _Unchanged(Exception):
    """Raised by the edit to write nothing."""


@dataclass
class _Outcome:
    code: ErrorCode = ErrorCode.none
    message: str | None = None
    deletions: list[str] = field(default_factory=list)
    upsertions: list[Any] = field(default_factory=list)

    def fail(self, code: ErrorCode, message: str) -> None:
        if self.code is ErrorCode.none:
            self.code, self.message = code, message


class AlterUserScramCredentialsHandler(Handler):
    api_key, min_version, max_version = 51, 0, 0

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        mod = response_module(self.api_key, header.api_version)
        outcomes = check(request)
        allowed = cluster_allowed(node, Op.ALTER)
        if not allowed:
            for outcome in outcomes.values():
                outcome.code, outcome.message = ErrorCode.cluster_authorization_failed, None
        elif any(o.code is ErrorCode.none for o in outcomes.values()):
            await _apply(node, outcomes)
        results = tuple(
            build(
                mod,
                "AlterUserScramCredentialsResult",
                user=user,
                error_code=o.code,
                error_message=o.message,
            )
            for user, o in outcomes.items()
        )
        return build(
            mod,
            "AlterUserScramCredentialsResponse",
            throttle_time=datetime.timedelta(0),
            results=results,
        )


def check(request: Any) -> dict[str, _Outcome]:
    """Each user's outcome from the request alone (what the document holds is checked
    when the change is applied)."""
    outcomes: dict[str, _Outcome] = {}
    pairs = Counter((a.name, a.mechanism) for a in (*request.deletions, *request.upsertions))
    for kind, items in (("delete", request.deletions), ("upsert", request.upsertions)):
        for a in items:
            outcome = outcomes.setdefault(a.name, _Outcome())
            if not a.name:
                outcome.fail(ErrorCode.unacceptable_credential, "Username must not be empty")
            elif a.mechanism not in MECHANISMS:
                outcome.fail(ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism")
            elif pairs[(a.name, a.mechanism)] > 1:
                outcome.fail(
                    ErrorCode.duplicate_resource,
                    "A user credential cannot be altered twice in the same request",
                )
            elif kind == "upsert" and a.iterations < MIN_ITERATIONS:
                outcome.fail(ErrorCode.unacceptable_credential, "Too few iterations")
            elif kind == "upsert" and a.iterations > MAX_ITERATIONS:
                outcome.fail(ErrorCode.unacceptable_credential, "Too many iterations")
            elif kind == "upsert":
                outcome.upsertions.append(a)
            else:
                outcome.deletions.append(MECHANISMS[a.mechanism])
    return outcomes


async def _apply(node: Node, outcomes: dict[str, _Outcome]) -> None:
    ready = {user: o for user, o in outcomes.items() if o.code is ErrorCode.none}

    def edit(doc: dict[str, Any]) -> None:
        # Run again from scratch if another writer got in first: decide on this copy.
        changed = False
        for user, o in ready.items():
            o.code, o.message = ErrorCode.none, None
            missing = [m for m in o.deletions if user not in doc.get("users", {})
                       or m not in doc["users"][user]]  # fmt: skip
            if missing:
                o.code = ErrorCode.resource_not_found
                o.message = "Attempt to delete a user credential that does not exist"
                continue
            for mechanism in o.deletions:
                delete_credential(doc, user, mechanism)
            for u in o.upsertions:
                mechanism = MECHANISMS[u.mechanism]
                cred = credential_from_salted_password(
                    mechanism, u.salted_password, u.salt, u.iterations
                )
                set_credential(doc, user, mechanism, cred)
            changed = True
        if not changed:
            raise _Unchanged

    try:
        await node.security.change(edit)
    except _Unchanged:
        pass  # every user failed on what the document holds: nothing to write
    except (ObjectStoreError, SecurityDocError) as exc:
        for o in ready.values():
            o.code, o.message = ErrorCode.unknown_server_error, str(exc)

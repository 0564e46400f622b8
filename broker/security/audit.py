"""`--audit-log PATH`: one JSON line per authentication and per changed resource.

Owns: the audit file and what a line holds (docs/security.md, "Audit log"). The
connection calls `authentication(...)` once per SASL attempt (or TLS identity) and
`request(...)` once per answered request; only the mutating APIs of `_RESOURCES` write
lines, one per resource the request names, its outcome read from that resource's
error code in the answer. A line names who (principal, client address, client id),
what (api, operation, resource type, resource) and how it ended (`outcome` success or
failure, and Kafka's error name).

Guarantees: every event is one complete line, written and flushed before the call
returns (a crash loses no line half-written); no password, salt or salted password is
ever written (AlterUserScramCredentials lines name the user and mechanisms only);
a file that cannot be opened is a one-line ConfigError when the broker starts.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from tidelog.broker.config_values import ConfigError
from tidelog.protocol.errors import ErrorCode

# Kafka's config resource types (AlterConfigs, IncrementalAlterConfigs).
_CONFIG_TYPES = {2: "TOPIC", 4: "BROKER", 8: "BROKER_LOGGER", 16: "CLIENT_METRICS", 32: "GROUP"}
# Kafka's ACL ResourceType numbers (CreateAcls, DeleteAcls).
_ACL_RESOURCE_TYPES = {
    1: "ANY",
    2: "TOPIC",
    3: "GROUP",
    4: "CLUSTER",
    5: "TRANSACTIONAL_ID",
    6: "DELEGATION_TOKEN",
    7: "USER",
}
_SCRAM_MECHANISMS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
# IncrementalAlterConfigs' operations; AlterConfigs' entries are SETs of the whole set.
_CONFIG_OPS = {0: "SET", 1: "DELETE", 2: "APPEND", 3: "SUBTRACT"}

# One changed resource: (resource_type, resource, extra fields, error code).
Touched = tuple[str, str | None, dict[str, Any], int]
Extract = Callable[[Any, Any], Iterator[Touched]]


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"UNKNOWN_ERROR_{code}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


# -- what each mutating API touches -----------------------------------------------------


def _topics(results: str) -> Extract:
    def extract(request: Any, response: Any) -> Iterator[Touched]:
        for r in getattr(response, results):
            name = r.name if r.name is not None else str(getattr(r, "topic_id", ""))
            yield "TOPIC", name, {}, r.error_code

    return extract


def _configs(request: Any, response: Any) -> Iterator[Touched]:
    # What each resource asked, by name (values stay out: the broker's log has them).
    changes: dict[tuple[int, str], list[str]] = {}
    for res in request.resources:
        changes[(res.resource_type, res.resource_name)] = [
            f"{_CONFIG_OPS.get(int(getattr(c, 'config_operation', 0)), 'UNKNOWN')} {c.name}"
            for c in res.configs
        ]
    for r in response.responses:
        kind = _CONFIG_TYPES.get(r.resource_type, str(r.resource_type))
        asked = changes.get((r.resource_type, r.resource_name), [])
        yield kind, r.resource_name, {"changes": asked}, r.error_code


def _delete_records(request: Any, response: Any) -> Iterator[Touched]:
    for t in response.topics:
        for p in t.partitions:
            yield "TOPIC", t.name, {"partition": p.partition_index}, p.error_code


def _delete_groups(request: Any, response: Any) -> Iterator[Touched]:
    for r in response.results:
        yield "GROUP", r.group_id, {}, r.error_code


def _group_offsets(request: Any, response: Any) -> Iterator[Touched]:
    top = getattr(response, "error_code", 0)
    extra: dict[str, Any] = {}
    if getattr(request, "transactional_id", None) is not None:
        extra["transactional_id"] = request.transactional_id
    for t in response.topics:
        for p in t.partitions:
            code = p.error_code or top
            where = {"topic": t.name, "partition": p.partition_index}
            yield "GROUP", request.group_id, {**extra, **where}, code
    if not response.topics and top:
        yield "GROUP", request.group_id, extra, top


def _acl_fields(acl: Any, prefix: str = "") -> dict[str, Any]:
    return {
        "acl_principal": getattr(acl, f"principal{prefix}"),
        "acl_host": getattr(acl, f"host{prefix}"),
        "acl_operation": acl.operation,
        "acl_permission_type": acl.permission_type,
    }


def _create_acls(request: Any, response: Any) -> Iterator[Touched]:
    for creation, result in zip(request.creations, response.results, strict=False):
        kind = _ACL_RESOURCE_TYPES.get(creation.resource_type, str(creation.resource_type))
        extra = {"pattern_type": creation.resource_pattern_type, **_acl_fields(creation)}
        yield kind, creation.resource_name, extra, result.error_code


def _delete_acls(request: Any, response: Any) -> Iterator[Touched]:
    for f, result in zip(request.filters, response.filter_results, strict=False):
        kind = _ACL_RESOURCE_TYPES.get(f.resource_type_filter, str(f.resource_type_filter))
        extra = {
            "pattern_type": f.pattern_type_filter,
            **_acl_fields(f, "_filter"),
            "matching_acls": len(result.matching_acls),
        }
        yield kind, f.resource_name_filter, extra, result.error_code


def _scram_users(request: Any, response: Any) -> Iterator[Touched]:
    changes: dict[str, list[str]] = {}
    for kind, items in (("delete", request.deletions), ("upsert", request.upsertions)):
        for item in items:
            mechanism = _SCRAM_MECHANISMS.get(item.mechanism, str(item.mechanism))
            changes.setdefault(item.name, []).append(f"{kind} {mechanism}")
    for r in response.results:
        yield "USER", r.user, {"changes": changes.get(r.user, [])}, r.error_code


# api_key -> (Kafka's API name, Kafka's AclOperation name, what it touches)
_RESOURCES: dict[int, tuple[str, str, Extract]] = {
    8: ("OffsetCommit", "READ", _group_offsets),
    19: ("CreateTopics", "CREATE", _topics("topics")),
    20: ("DeleteTopics", "DELETE", _topics("responses")),
    21: ("DeleteRecords", "DELETE", _delete_records),
    28: ("TxnOffsetCommit", "READ", _group_offsets),
    30: ("CreateAcls", "ALTER", _create_acls),
    31: ("DeleteAcls", "ALTER", _delete_acls),
    33: ("AlterConfigs", "ALTER_CONFIGS", _configs),
    37: ("CreatePartitions", "ALTER", _topics("results")),
    42: ("DeleteGroups", "DELETE", _delete_groups),
    44: ("IncrementalAlterConfigs", "ALTER_CONFIGS", _configs),
    47: ("OffsetDelete", "DELETE", _group_offsets),
    51: ("AlterUserScramCredentials", "ALTER", _scram_users),
}
AUDITED_APIS = frozenset(_RESOURCES)


class AuditLog:
    """The audit file, opened for appending; one JSON object per line."""

    def __init__(self, path: Path, clock: Callable[[], str] = _now) -> None:
        self.path = path
        self._clock = clock
        try:
            self._file: TextIO | None = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"invalid value for --audit-log: cannot open {path}: {exc.strerror}"
            ) from None

    def _write(self, line: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        self._file.flush()

    def _line(self, event: str, principal: str, host: str, client_id: str | None) -> dict[str, Any]:
        return {
            "time": self._clock(),
            "event": event,
            "principal": principal,
            "client_address": host,
            "client_id": client_id,
        }

    def authentication(
        self,
        principal: str,
        host: str,
        client_id: str | None,
        mechanism: str,
        listener: str,
        ok: bool,
        reason: str,
    ) -> None:
        """One line for one authentication attempt (SASL, or a TLS certificate)."""
        line = self._line("authentication", principal, host, client_id)
        line.update(mechanism=mechanism, listener=listener, outcome="success" if ok else "failure")
        if not ok:
            line["error"] = "SASL_AUTHENTICATION_FAILED"
        if reason:
            line["reason"] = reason
        self._write(line)

    def request(
        self,
        principal: str,
        host: str,
        client_id: str | None,
        api_key: int,
        api_version: int,
        request: Any,
        response: Any,
    ) -> None:
        """One line per resource a mutating request names; nothing for other APIs (or for
        an answer that is not a kio response entity)."""
        known = _RESOURCES.get(api_key)
        if known is None or isinstance(response, list | bytes | bytearray) or response is None:
            return
        api, operation, extract = known
        for resource_type, resource, extra, code in extract(request, response):
            line = self._line("request", principal, host, client_id)
            line.update(
                api=api,
                api_version=api_version,
                operation=operation,
                resource_type=resource_type,
                resource=resource,
                **extra,
            )
            line["outcome"] = "success" if code == 0 else "failure"
            if code != 0:
                line["error"] = _error_name(code)
            self._write(line)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

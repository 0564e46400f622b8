"""Kafka's ACLs: bindings, filters, and the allow/deny decision. Pure: no I/O.

Owns: Kafka's enums with Kafka's numbers (ResourceType, PatternType, AclOperation,
PermissionType), `AclBinding` as the security document holds it (the `acls` list of
storage/security_doc.py, docs/security.md "ACLs"), `AclFilter` (DescribeAcls and
DeleteAcls, with ANY and MATCH as Kafka means them), the checks CreateAcls makes,
and `AclIndex`, the decision as Kafka's StandardAuthorizer makes it:

- a super user is allowed everything;
- only ACLs whose resource pattern matches count: LITERAL with the resource's name,
  LITERAL `*` (every resource of the type), PREFIXED with a prefix of the name;
- of those, an ACL applies when its principal is the caller's or `User:*`, its host
  the caller's or `*`, and its operation the one asked, ALL, or (ALLOW only) one that
  implies it: READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
  DESCRIBE_CONFIGS;
- any applicable DENY denies; else any applicable ALLOW allows; else, if no ACL at all
  matches the resource, `allow_everyone_if_no_acl_found` decides; else denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tidelog.broker.security.principal import parse_principal

CLUSTER_NAME = "kafka-cluster"
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class PermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# An ALLOW of the key also allows each operation of the value.
_IMPLIED: Mapping[AclOperation, frozenset[AclOperation]] = {
    AclOperation.DESCRIBE: frozenset(
        {AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE, AclOperation.ALTER}
    ),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.ALTER_CONFIGS}),
}


class AclError(ValueError):
    """A binding or filter Kafka would refuse (INVALID_REQUEST), with Kafka's message."""


def _enum(cls: type[IntEnum], value: int) -> Any:
    try:
        return cls(value)
    except ValueError:
        return cls(0)  # UNKNOWN, as Kafka reads a number it does not know


@dataclass(frozen=True, slots=True)
class AclBinding:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: PermissionType

    @classmethod
    def of(
        cls,
        resource_type: int,
        name: str,
        pattern_type: int,
        principal: str,
        host: str,
        operation: int,
        permission: int,
    ) -> AclBinding:
        return cls(
            _enum(ResourceType, resource_type),
            name,
            _enum(PatternType, pattern_type),
            principal,
            host,
            _enum(AclOperation, operation),
            _enum(PermissionType, permission),
        )

    def validate(self) -> None:
        """Raise AclError if CreateAcls must refuse this binding (Kafka's checks)."""
        if self.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
            raise AclError(f"Invalid resourceType {self.resource_type.name}")
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            raise AclError(f"Invalid patternType {self.pattern_type.name}")
        if self.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
            raise AclError(f"Invalid operation {self.operation.name}")
        if self.permission in (PermissionType.UNKNOWN, PermissionType.ANY):
            raise AclError(f"Invalid permissionType {self.permission.name}")
        if not self.name:
            raise AclError("Resource name should not be empty")
        if self.resource_type is ResourceType.CLUSTER and self.name != CLUSTER_NAME:
            raise AclError(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
        try:
            parse_principal(self.principal)
        except ValueError:
            raise AclError(f"Could not parse principal from `{self.principal}`") from None
        if not self.host:
            raise AclError("Invalid host: an empty host; use * for every host")

    def to_json(self) -> dict[str, str]:
        return {
            "resource_type": self.resource_type.name,
            "name": self.name,
            "pattern_type": self.pattern_type.name,
            "principal": self.principal,
            "host": self.host,
            "operation": self.operation.name,
            "permission": self.permission.name,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AclBinding:
        """Raises KeyError, TypeError or ValueError if `raw` is not a binding."""
        binding = cls(
            ResourceType[raw["resource_type"]],
            str(raw["name"]),
            PatternType[raw["pattern_type"]],
            str(raw["principal"]),
            str(raw["host"]),
            AclOperation[raw["operation"]],
            PermissionType[raw["permission"]],
        )
        binding.validate()
        return binding


@dataclass(frozen=True, slots=True)
class AclFilter:
    """DescribeAcls / DeleteAcls: None means any name, principal or host."""

    resource_type: ResourceType
    name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: AclOperation
    permission: PermissionType

    @classmethod
    def of(
        cls,
        resource_type: int,
        name: str | None,
        pattern_type: int,
        principal: str | None,
        host: str | None,
        operation: int,
        permission: int,
    ) -> AclFilter:
        return cls(
            _enum(ResourceType, resource_type),
            name,
            _enum(PatternType, pattern_type),
            principal,
            host,
            _enum(AclOperation, operation),
            _enum(PermissionType, permission),
        )

    def validate(self) -> None:
        """Raise AclError for a filter with an UNKNOWN part (Kafka refuses those)."""
        for part in (self.resource_type, self.pattern_type, self.operation, self.permission):
            if part == 0:
                raise AclError(f"The filter has an unknown {type(part).__name__}")

    def matches(self, b: AclBinding) -> bool:
        if self.resource_type is not ResourceType.ANY and self.resource_type != b.resource_type:
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH) and (
            self.pattern_type != b.pattern_type
        ):
            return False
        if self.name is not None:
            if self.pattern_type in (PatternType.ANY, b.pattern_type):
                if self.name != b.name:
                    return False
            elif b.pattern_type is PatternType.LITERAL:  # MATCH
                if b.name not in (self.name, WILDCARD):
                    return False
            elif not self.name.startswith(b.name):  # MATCH, PREFIXED binding
                return False
        if self.principal is not None and self.principal != b.principal:
            return False
        if self.host is not None and self.host != b.host:
            return False
        if self.operation is not AclOperation.ANY and self.operation != b.operation:
            return False
        return self.permission is PermissionType.ANY or self.permission == b.permission


def bindings_of(raw: Iterable[Any]) -> list[AclBinding]:
    """The document's `acls` list read as bindings; an entry this version cannot read
    is skipped (it allows nothing; DENY entries it held are lost, so writers refuse
    to write one: see `AclBinding.validate`)."""
    out: list[AclBinding] = []
    for item in raw:
        try:
            out.append(AclBinding.from_json(item))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


class AclIndex:
    """The bindings of one document, arranged for `authorize` (built once per version)."""

    def __init__(
        self,
        bindings: Iterable[AclBinding],
        super_users: Iterable[str] = (),
        allow_if_no_acl: bool = False,
    ) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._literal: dict[tuple[ResourceType, str], list[AclBinding]] = {}
        self._prefixed: dict[ResourceType, list[AclBinding]] = {}
        for b in bindings:
            if b.pattern_type is PatternType.LITERAL:
                self._literal.setdefault((b.resource_type, b.name), []).append(b)
            elif b.pattern_type is PatternType.PREFIXED:
                self._prefixed.setdefault(b.resource_type, []).append(b)

    def _matching(self, rtype: ResourceType, name: str) -> list[AclBinding]:
        found = list(self._literal.get((rtype, name), ()))
        if name != WILDCARD:
            found.extend(self._literal.get((rtype, WILDCARD), ()))
        found.extend(b for b in self._prefixed.get(rtype, ()) if name.startswith(b.name))
        return found

    def authorize(
        self, principal: str, host: str, operation: int, resource_type: int, name: str
    ) -> bool:
        if principal in self.super_users:
            return True
        op = _enum(AclOperation, operation)
        host = host.removeprefix("/")
        matching = self._matching(_enum(ResourceType, resource_type), name)
        if not matching:
            return self.allow_if_no_acl
        implied_by = _IMPLIED.get(op, frozenset())
        allowed = False
        for b in matching:
            if b.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if b.host not in (host, WILDCARD):
                continue
            if b.permission is PermissionType.DENY:
                if b.operation in (op, AclOperation.ALL):
                    return False
            elif b.operation in (op, AclOperation.ALL) or b.operation in implied_by:
                allowed = True
        return allowed

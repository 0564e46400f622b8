"""The ACL decision (broker/security/acl.py) as Kafka's StandardAuthorizer makes it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidelog.broker.security.acl import (
    CLUSTER_NAME,
    AclBinding,
    AclError,
    AclFilter,
    AclIndex,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
    bindings_of,
)

Op, Res, Pat, Perm = AclOperation, ResourceType, PatternType, PermissionType
ALICE, BOB = "User:alice", "User:bob"


def acl(
    name: str = "orders",
    op: AclOperation = Op.READ,
    perm: PermissionType = Perm.ALLOW,
    *,
    principal: str = ALICE,
    host: str = "*",
    rtype: ResourceType = Res.TOPIC,
    pattern: PatternType = Pat.LITERAL,
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def may(
    index: AclIndex,
    op: AclOperation,
    name: str = "orders",
    *,
    principal: str = ALICE,
    host: str = "/10.0.0.1",
    rtype: ResourceType = Res.TOPIC,
) -> bool:
    return index.authorize(principal, host, op, rtype, name)


def test_an_allow_allows_only_its_principal_operation_and_resource() -> None:
    index = AclIndex([acl()])
    assert may(index, Op.READ)
    assert not may(index, Op.WRITE)
    assert not may(index, Op.READ, principal=BOB)
    assert not may(index, Op.READ, "payments")  # no ACL: denied by default
    assert not may(index, Op.READ, rtype=Res.GROUP)


def test_deny_wins_over_allow_whatever_the_order() -> None:
    for bindings in ([acl(), acl(perm=Perm.DENY)], [acl(perm=Perm.DENY), acl()]):
        assert not may(AclIndex(bindings), Op.READ)
    # A DENY of ALL on a prefix beats a literal ALLOW.
    index = AclIndex([acl(), acl("ord", Op.ALL, Perm.DENY, pattern=Pat.PREFIXED)])
    assert not may(index, Op.READ)


def test_all_matches_every_operation() -> None:
    index = AclIndex([acl(op=Op.ALL)])
    assert all(may(index, op) for op in (Op.READ, Op.WRITE, Op.DELETE, Op.DESCRIBE))


@pytest.mark.parametrize("op", [Op.READ, Op.WRITE, Op.DELETE, Op.ALTER])
def test_read_write_delete_alter_imply_describe(op: AclOperation) -> None:
    index = AclIndex([acl(op=op)])
    assert may(index, Op.DESCRIBE)
    assert not may(index, Op.DESCRIBE_CONFIGS)


def test_alter_configs_implies_describe_configs_only() -> None:
    index = AclIndex([acl(op=Op.ALTER_CONFIGS)])
    assert may(index, Op.DESCRIBE_CONFIGS)
    assert not may(index, Op.DESCRIBE)


def test_a_deny_of_read_does_not_deny_describe() -> None:
    index = AclIndex([acl(op=Op.DESCRIBE), acl(op=Op.READ, perm=Perm.DENY)])
    assert may(index, Op.DESCRIBE)
    assert not may(index, Op.READ)


def test_prefixed_and_wildcard_names() -> None:
    index = AclIndex([acl("pay", pattern=Pat.PREFIXED), acl("*", Op.WRITE)])
    assert may(index, Op.READ, "payments") and may(index, Op.READ, "pay")
    assert not may(index, Op.READ, "orders")
    assert may(index, Op.WRITE, "anything") and may(index, Op.WRITE, "payments")


def test_wildcard_principal_and_hosts() -> None:
    index = AclIndex([acl(principal="User:*", host="10.0.0.1")])
    assert may(index, Op.READ, principal=BOB)
    assert may(index, Op.READ, principal=BOB, host="10.0.0.1")  # with or without the /
    assert not may(index, Op.READ, host="/10.0.0.2")


def test_super_users_are_allowed_even_against_a_deny() -> None:
    index = AclIndex([acl(op=Op.ALL, perm=Perm.DENY)], super_users=[ALICE])
    assert may(index, Op.DELETE) and may(index, Op.ALTER, CLUSTER_NAME, rtype=Res.CLUSTER)
    assert not may(index, Op.READ, principal=BOB)


def test_allow_everyone_if_no_acl_found_only_where_no_acl_names_the_resource() -> None:
    index = AclIndex([acl(principal=BOB)], allow_if_no_acl=True)
    assert may(index, Op.WRITE, "payments")  # no ACL at all on it
    assert not may(index, Op.READ)  # an ACL names "orders", for someone else
    assert not may(AclIndex([]), Op.READ)


def test_validation_refuses_what_kafka_refuses() -> None:
    good = acl()
    good.validate()
    bad = [
        acl(rtype=Res.ANY),
        acl(pattern=Pat.MATCH),
        acl(op=Op.ANY),
        acl(perm=Perm.ANY),
        acl(""),
        acl("other", rtype=Res.CLUSTER),
        acl(principal="alice"),
        acl(host=""),
    ]
    for b in bad:
        with pytest.raises(AclError):
            b.validate()
    AclBinding.of(4, CLUSTER_NAME, 3, ALICE, "*", 7, 3).validate()
    assert AclBinding.of(99, "x", 3, ALICE, "*", 3, 3).resource_type is Res.UNKNOWN


def f(
    rtype: ResourceType = Res.ANY,
    name: str | None = None,
    pattern: PatternType = Pat.ANY,
    principal: str | None = None,
    op: AclOperation = Op.ANY,
    perm: PermissionType = Perm.ANY,
) -> AclFilter:
    return AclFilter(rtype, name, pattern, principal, None, op, perm)


def test_filters_any_match_and_exact() -> None:
    lit, star, pre = acl(), acl("*"), acl("ord", pattern=Pat.PREFIXED)
    assert all(f().matches(b) for b in (lit, star, pre))
    assert [f(name="orders").matches(b) for b in (lit, star, pre)] == [True, False, False]
    assert [f(name="orders", pattern=Pat.MATCH).matches(b) for b in (lit, star, pre)] == [
        True,
        True,
        True,
    ]
    assert [f(name="ord", pattern=Pat.PREFIXED).matches(b) for b in (lit, star, pre)] == [
        False,
        False,
        True,
    ]
    assert not f(rtype=Res.GROUP).matches(lit)
    assert not f(principal=BOB).matches(lit)
    assert f(op=Op.READ, perm=Perm.ALLOW).matches(lit)
    assert not f(perm=Perm.DENY).matches(lit)
    with pytest.raises(AclError):
        f(op=Op.UNKNOWN).validate()


def test_the_document_form_round_trips_and_bad_entries_are_skipped() -> None:
    b = acl("pay", Op.IDEMPOTENT_WRITE, Perm.DENY, pattern=Pat.PREFIXED)
    assert AclBinding.from_json(b.to_json()) == b
    assert bindings_of(
        [b.to_json(), {"name": "x"}, "junk", {**b.to_json(), "operation": "ANY"}]
    ) == [b]


names = st.text("ab*", min_size=1, max_size=4)
ops = st.sampled_from([o for o in Op if o not in (Op.UNKNOWN, Op.ANY)])
bindings = st.builds(
    AclBinding,
    st.just(Res.TOPIC),
    names,
    st.sampled_from([Pat.LITERAL, Pat.PREFIXED]),
    st.sampled_from([ALICE, BOB, "User:*"]),
    st.sampled_from(["*", "10.0.0.1"]),
    ops,
    st.sampled_from([Perm.ALLOW, Perm.DENY]),
)


@given(st.lists(bindings, max_size=6), names, ops)
def test_a_matching_deny_always_denies_and_adding_an_allow_never_denies(
    acls: list[AclBinding], name: str, op: AclOperation
) -> None:
    before = may(AclIndex(acls), op, name)
    allow = acl(name, op)
    assert may(AclIndex([*acls, allow]), op, name) or any(b.permission is Perm.DENY for b in acls)
    deny = acl(name, Op.ALL, Perm.DENY)
    assert not may(AclIndex([*acls, deny]), op, name)
    if before:  # adding a deny elsewhere does not change this decision
        other = acl(name + "x", Op.ALL, Perm.DENY)
        assert may(AclIndex([*acls, other]), op, name)


@given(st.lists(bindings, max_size=6), names)
def test_the_describe_filter_match_finds_exactly_the_acls_the_decision_considers(
    acls: list[AclBinding], name: str
) -> None:
    """MATCH with a name lists the ACLs that apply to that resource: with none of
    them, the no-ACL default decides."""
    matched = [b for b in acls if f(name=name, pattern=Pat.MATCH).matches(b)]
    index = AclIndex(acls, allow_if_no_acl=True)
    if not matched:
        assert may(index, Op.READ, name, principal="User:nobody")

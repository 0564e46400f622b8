"""BrokerSecurity's ACLs over the security document: changes, sharing, failing safe."""

from __future__ import annotations

import asyncio
import dataclasses

from tidelog.broker.config_values import HostPort
from tidelog.broker.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)
from tidelog.broker.security.options import plaintext_only
from tidelog.broker.security.state import BrokerSecurity
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.security_doc import SECURITY_KEY

ALICE = "User:alice"
READ_ORDERS = AclBinding(
    ResourceType.TOPIC,
    "orders",
    PatternType.LITERAL,
    ALICE,
    "*",
    AclOperation.READ,
    PermissionType.ALLOW,
)
EVERY = AclFilter(
    ResourceType.ANY, None, PatternType.ANY, None, None, AclOperation.ANY, PermissionType.ANY
)


def security(store: MemoryObjectStore, authorizer: str = "acl") -> BrokerSecurity:
    config = dataclasses.replace(plaintext_only(HostPort("127.0.0.1", 9092)), authorizer=authorizer)
    return BrokerSecurity(config, store)


def may_read(s: BrokerSecurity) -> bool:
    return s.authorize(ALICE, "/10.0.0.1", AclOperation.READ, ResourceType.TOPIC, "orders")


def test_an_acl_made_on_one_broker_applies_on_another_after_its_refresh() -> None:
    async def run() -> None:
        store = MemoryObjectStore()
        a, b = security(store), security(store)
        await b.docs.refresh()
        assert not may_read(a) and not may_read(b)
        await a.create_acls([READ_ORDERS, READ_ORDERS])
        assert may_read(a) and not may_read(b)  # b has not read the bucket yet
        assert await b.docs.refresh()
        assert may_read(b)
        assert len(await b.acls()) == 1  # the same binding twice is stored once
        assert await b.delete_acls([EVERY]) == [[READ_ORDERS]]
        assert not may_read(b)
        await a.docs.refresh()
        assert not may_read(a)

    asyncio.run(run())


def test_an_unreadable_document_keeps_the_acls_in_force() -> None:
    async def run() -> None:
        store = MemoryObjectStore()
        a, b = security(store), security(store)
        await a.create_acls([READ_ORDERS])
        await b.docs.refresh()
        await store.put(SECURITY_KEY, b"{not json")
        assert not await b.docs.refresh()
        assert may_read(b)

    asyncio.run(run())


def test_an_entry_this_version_cannot_read_allows_nothing_and_survives_changes() -> None:
    async def run() -> None:
        store = MemoryObjectStore()
        a = security(store)
        future = {**READ_ORDERS.to_json(), "operation": "READ_TOMORROW"}
        await a.change(lambda doc: doc["acls"].append(future))
        assert not may_read(a)
        await a.create_acls([READ_ORDERS])
        await a.delete_acls([EVERY])
        assert a.doc["acls"] == [future]

    asyncio.run(run())


def test_with_the_authorizer_off_everything_is_allowed() -> None:
    s = security(MemoryObjectStore(), authorizer="off")
    assert not s.enabled and may_read(s)

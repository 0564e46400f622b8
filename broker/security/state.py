"""`BrokerSecurity`: what handlers and connections ask about identity and permission.

Owns: the broker's copy of the security document (users and ACLs, storage/
security_doc.py), kept fresh by polling the bucket every `--security-refresh-ms`
while SASL or the ACL authorizer is on (a HEAD each time; nothing when both are off),
and changes made through this broker, which apply here at once and on every other
broker of the bucket within one refresh interval.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from tidelog.broker.security.acl import AclBinding, AclFilter, AclIndex, bindings_of
from tidelog.broker.security.audit import AuditLog
from tidelog.broker.security.credentials import ScramCredential, credential, make_credential
from tidelog.broker.security.options import SecurityConfig
from tidelog.broker.security.peer_login import (
    BROKER_MECHANISM,
    BROKER_PRINCIPAL,
    BROKER_USER,
    broker_password,
    broker_salt,
)
from tidelog.protocol.errors import ErrorCode
from tidelog.storage.errors import StoreError
from tidelog.storage.object_store import ObjectStore, ObjectStoreError
from tidelog.storage.security_doc import SecurityDocError, SecurityDocStore

log = logging.getLogger(__name__)


class BrokerSecurity:
    def __init__(self, config: SecurityConfig, store: ObjectStore) -> None:
        self.config = config
        self.docs = SecurityDocStore(store)
        self._poller: asyncio.Task[None] | None = None
        self._broker_cache: tuple[bytes, ScramCredential] | None = None
        # --audit-log: opened here, so a path that cannot be opened stops start-up.
        self.audit: AuditLog | None = AuditLog(config.audit_log) if config.audit_log else None
        # Handlers check this one attribute before anything else: with the authorizer
        # off, authorization costs nothing more on the produce and fetch paths.
        self.enabled = config.authorizer == "acl"
        self._index: AclIndex | None = None
        self._index_of: dict[str, Any] | None = None  # the document `_index` was built from

    @property
    def doc(self) -> dict[str, Any]:
        return self.docs.doc

    async def start(self) -> None:
        """Load the document (before anyone is served) and keep it fresh."""
        if not self.config.needs_documents:
            return
        await self.docs.refresh()
        if self.config.inter_broker_sasl and self.broker_secret() is None:
            await self.change(_add_broker_secret)  # the first broker that needs one
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.audit is not None:
            self.audit.close()

    async def _poll(self) -> None:
        interval = self.config.security_refresh_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.docs.refresh():
                    log.info("security document changed version=%d", self.doc["version"])
            except (ObjectStoreError, SecurityDocError) as exc:
                log.warning("security document not refreshed: %s", exc)

    async def refresh(self) -> bool:
        """Read the document now if it changed in the bucket (one HEAD if not): what
        DescribeUserScramCredentials does, so it answers fresh even with polling off."""
        return await self.docs.refresh()

    async def change(self, edit: Callable[[dict[str, Any]], Any]) -> Any:
        """Change the document in the bucket (see SecurityDocStore.change)."""
        return await self.docs.change(edit)

    # -- authentication ----------------------------------------------------------------

    def credential(self, user: str, mechanism: str) -> ScramCredential | None:
        if user == BROKER_USER:
            return self._broker_credential(mechanism)
        return credential(self.doc, user, mechanism)

    def broker_secret(self) -> bytes | None:
        """The cluster's secret the broker principal's password is derived from."""
        raw = self.doc.get("broker_secret")
        return base64.b64decode(raw) if isinstance(raw, str) else None

    def _broker_credential(self, mechanism: str) -> ScramCredential | None:
        secret = self.broker_secret()
        if secret is None or mechanism != BROKER_MECHANISM:
            return None
        cached = self._broker_cache
        if cached is None or cached[0] != secret:
            made = make_credential(broker_password(secret), mechanism, salt=broker_salt(secret))
            cached = self._broker_cache = (secret, made)
        return cached[1]

    # -- authorization -----------------------------------------------------------------

    async def acls(self) -> list[AclBinding]:
        """The ACLs in the document: this broker's copy while it polls the bucket, else
        (authorizer off, no SASL) read now, so DescribeAcls is never stale there."""
        if self._poller is None:
            try:
                await self.docs.refresh()
            except (ObjectStoreError, SecurityDocError) as exc:
                raise StoreError(ErrorCode.unknown_server_error, f"ACLs not read: {exc}") from None
        return bindings_of(self.doc.get("acls", ()))

    def _acl_index(self) -> AclIndex:
        doc = self.doc
        if self._index is None or self._index_of is not doc:
            self._index = AclIndex(
                bindings_of(doc.get("acls", ())),
                # The brokers' own principal (inter-broker SASL) is a super user, as
                # Kafka's brokers are of their cluster.
                (*self.config.super_users, BROKER_PRINCIPAL),
                self.config.allow_everyone_if_no_acl_found,
            )
            self._index_of = doc
        return self._index

    def authorize(
        self, principal: str, host: str, operation: int, resource_type: int, name: str
    ) -> bool:
        """Whether `principal` connecting from `host` may do `operation` on the resource
        (Kafka's AclOperation and ResourceType numbers; broker/security/acl.py decides)."""
        if not self.enabled:
            return True
        return self._acl_index().authorize(principal, host, operation, resource_type, name)

    async def create_acls(self, bindings: list[AclBinding]) -> None:
        """Add the (validated) bindings to the document; one already there stays one."""

        def edit(doc: dict[str, Any]) -> None:
            present = set(bindings_of(doc["acls"]))
            for b in bindings:
                if b not in present:
                    doc["acls"].append(b.to_json())
                    present.add(b)

        await self._change_acls(edit)

    async def _change_acls(self, edit: Callable[[dict[str, Any]], Any]) -> Any:
        """`change`, with a bucket that fails heard as Kafka's UNKNOWN_SERVER_ERROR."""
        try:
            return await self.change(edit)
        except (ObjectStoreError, SecurityDocError) as exc:
            raise StoreError(ErrorCode.unknown_server_error, f"ACLs not stored: {exc}") from None

    async def delete_acls(self, filters: list[AclFilter]) -> list[list[AclBinding]]:
        """Remove every binding any filter matches; per filter, the bindings it matched."""

        def edit(doc: dict[str, Any]) -> list[list[AclBinding]]:
            current = bindings_of(doc["acls"])
            matched = [[b for b in current if f.matches(b)] for f in filters]
            gone = {b for group in matched for b in group}
            doc["acls"] = [raw for raw in doc["acls"] if not set(bindings_of([raw])) & gone]
            return matched

        result: list[list[AclBinding]] = await self._change_acls(edit)
        return result


def _add_broker_secret(doc: dict[str, Any]) -> None:
    doc.setdefault("broker_secret", base64.b64encode(os.urandom(32)).decode())


__all__ = ["BrokerSecurity"]

"""`BrokerSecurity`: what handlers and connections ask about identity and permission.

Owns: the broker's copy of the security document (users and ACLs, storage/
security_doc.py), kept fresh by polling the bucket every `--security-refresh-ms`
while SASL or the ACL authorizer is on (a HEAD each time; nothing when both are off),
and changes made through this broker, which apply here at once and on every other
broker of the bucket within one refresh interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from tidelog.broker.security.audit import AuditLog
from tidelog.broker.security.credentials import ScramCredential, credential
from tidelog.broker.security.options import SecurityConfig
from tidelog.storage.object_store import ObjectStore, ObjectStoreError
from tidelog.storage.security_doc import SecurityDocError, SecurityDocStore

log = logging.getLogger(__name__)


class BrokerSecurity:
    def __init__(self, config: SecurityConfig, store: ObjectStore) -> None:
        self.config = config
        self.docs = SecurityDocStore(store)
        self._poller: asyncio.Task[None] | None = None
        # --audit-log: opened here, so a path that cannot be opened stops start-up.
        self.audit: AuditLog | None = AuditLog(config.audit_log) if config.audit_log else None

    @property
    def doc(self) -> dict[str, Any]:
        return self.docs.doc

    async def start(self) -> None:
        """Load the document (before anyone is served) and keep it fresh."""
        if not self.config.needs_documents:
            return
        await self.docs.refresh()
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
        return credential(self.doc, user, mechanism)

    # -- authorization -----------------------------------------------------------------

    def authorize(
        self, principal: str, host: str, operation: int, resource_type: int, name: str
    ) -> bool:
        """Whether `principal` connecting from `host` may do `operation` on the resource
        (Kafka's AclOperation and ResourceType numbers)."""
        return self.config.authorizer == "off"

"""An object store that can be switched off from outside the process: outages on demand.

Owns: nothing but the check. `FaultyObjectStore` wraps any ObjectStore and, while the
switch file exists, makes every call raise ObjectStoreUnavailable (the retriable error
every backend raises for transport trouble) without touching the wrapped store. When the
file is removed, calls go through again. The file's content is ignored; it is looked up
once per call (one stat), so another process (a drill, a test) can create and remove it
while the broker runs. Opened by store_url.py for `fault+<url>?switch=<path>`.
"""

from __future__ import annotations

import os
from pathlib import Path

from tidelog.storage.object_store import Data, ObjectInfo, ObjectStore, ObjectStoreUnavailable


class FaultyObjectStore:
    def __init__(self, inner: ObjectStore, switch: Path) -> None:
        self._inner = inner
        self._switch = switch

    @property
    def url(self) -> str:
        return f"fault+{self._inner.url}?switch={self._switch}"

    def _check(self, call: str) -> None:
        if os.path.exists(self._switch):
            raise ObjectStoreUnavailable(
                f"object store switched off call={call} switch={self._switch}"
            )

    async def get(self, key: str) -> bytes:
        self._check("get")
        return await self._inner.get(key)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        self._check("get_range")
        return await self._inner.get_range(key, start, length)

    async def head(self, key: str) -> ObjectInfo | None:
        self._check("head")
        return await self._inner.head(key)

    async def put(self, key: str, data: Data) -> str:
        self._check("put")
        return await self._inner.put(key, data)

    async def put_if_absent(self, key: str, data: Data) -> str:
        self._check("put_if_absent")
        return await self._inner.put_if_absent(key, data)

    async def put_if_match(self, key: str, data: Data, etag: str) -> str:
        self._check("put_if_match")
        return await self._inner.put_if_match(key, data, etag)

    async def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        self._check("list")
        return await self._inner.list(prefix, start_after)

    async def delete(self, key: str) -> None:
        self._check("delete")
        await self._inner.delete(key)

    async def close(self) -> None:
        await self._inner.close()

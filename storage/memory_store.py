"""An in-process ObjectStore for unit tests: the full contract, no I/O, fault injection.

Owns: a dict of objects. Guarantees the same conditional-write semantics as the real
backends; `unavailable = True` makes every call raise ObjectStoreUnavailable, `lose_answers`
makes conditional writes land but report failure (a lost response), `drop_keys` makes
them fail without landing, `gate` holds them until released (uploads in flight), and
`calls` counts requests by kind so tests can pin request costs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

from tidelog.storage.object_store import (
    Data,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreUnavailable,
    PreconditionFailed,
    as_bytes,
)


class MemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.unavailable = False
        self.lose_answers = 0  # writes that land but whose answer is "lost" (raises)
        self.drop_keys: set[str] = set()  # conditional writes to these fail without landing
        self.gate: asyncio.Event | None = None  # when set, conditional writes wait for it
        self.calls: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return "memory://"

    def _enter(self, kind: str) -> None:
        self.calls[kind] += 1
        if self.unavailable:
            raise ObjectStoreUnavailable(f"memory store switched off call={kind}")

    @staticmethod
    def _etag(data: bytes) -> str:
        return hashlib.md5(data).hexdigest()

    async def get(self, key: str) -> bytes:
        self._enter("get")
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(f"no such key key={key}") from None

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        self._enter("get_range")
        try:
            return self.objects[key][start : start + length]
        except KeyError:
            raise ObjectNotFound(f"no such key key={key}") from None

    async def head(self, key: str) -> ObjectInfo | None:
        self._enter("head")
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data), self._etag(data))

    async def put(self, key: str, data: Data) -> str:
        self._enter("put")
        self.objects[key] = as_bytes(data)
        return self._etag(self.objects[key])

    async def put_if_absent(self, key: str, data: Data) -> str:
        self._enter("put_if_absent")
        if self.gate is not None:
            await self.gate.wait()
        if key in self.drop_keys:
            self.drop_keys.discard(key)
            raise ObjectStoreUnavailable(f"write dropped key={key}")
        if key in self.objects:
            raise PreconditionFailed(f"key exists key={key}")
        self.objects[key] = as_bytes(data)
        if self.lose_answers > 0:
            self.lose_answers -= 1
            raise ObjectStoreUnavailable(f"answer lost after the write landed key={key}")
        return self._etag(self.objects[key])

    async def put_if_match(self, key: str, data: Data, etag: str) -> str:
        self._enter("put_if_match")
        current = self.objects.get(key)
        if current is None or self._etag(current) != etag:
            raise PreconditionFailed(f"etag mismatch key={key}")
        self.objects[key] = as_bytes(data)
        return self._etag(self.objects[key])

    async def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        self._enter("list")
        return [
            ObjectInfo(k, len(v), self._etag(v))
            for k, v in sorted(self.objects.items())
            if k.startswith(prefix) and (start_after is None or k > start_after)
        ]

    async def delete(self, key: str) -> None:
        self._enter("delete")
        self.objects.pop(key, None)

    async def close(self) -> None:
        return None

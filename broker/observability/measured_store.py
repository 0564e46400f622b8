"""An object store that reports every call to the broker's metrics.

Owns: `MeasuredStore`, a wrapper meeting the `ObjectStore` contract around any backend,
timing each call and naming its outcome (ok, not_found, precondition_failed, error)
and its bytes (sent for puts, received for gets). It also keeps the running totals the
status page shows and prices (`counts`, `errors`, `seconds`).

Guarantees: behaviour is the wrapped store's, exceptions included, re-raised as they
came; a `list` is counted as one call even when the backend pages through several.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tidelog.storage.object_store import (
    Data,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
)

_T = TypeVar("_T")
Report = Callable[[str, str, str, int, float], None]  # op, key, outcome, bytes, seconds


def _size(data: Data) -> int:
    return sum(len(p) for p in data) if isinstance(data, list) else len(data)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, ObjectNotFound):
        return "not_found"
    if isinstance(exc, PreconditionFailed):
        return "precondition_failed"
    return "error"


class MeasuredStore:
    def __init__(self, inner: ObjectStore, report: Report) -> None:
        self.inner = inner
        self._report = report
        self.counts: Counter[str] = Counter()  # calls by op, since start
        self.errors: Counter[str] = Counter()  # ... that failed (not_found is an answer)
        self.seconds: defaultdict[str, float] = defaultdict(float)  # ... time spent in them

    @property
    def url(self) -> str:
        return self.inner.url

    async def _call(
        self, op: str, key: str, sent: int, call: Awaitable[_T], received: Callable[[_T], int]
    ) -> _T:
        started = time.perf_counter()
        self.counts[op] += 1
        try:
            result = await call
        except BaseException as exc:
            outcome = _outcome(exc)
            self.errors[op] += outcome == "error"
            self._done(op, key, outcome, sent, started)
            raise
        self._done(op, key, "ok", sent + received(result), started)
        return result

    def _done(self, op: str, key: str, outcome: str, size: int, started: float) -> None:
        seconds = time.perf_counter() - started
        self.seconds[op] += seconds
        self._report(op, key, outcome, size, seconds)

    async def get(self, key: str) -> bytes:
        return await self._call("get", key, 0, self.inner.get(key), len)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        return await self._call("get", key, 0, self.inner.get_range(key, start, length), len)

    async def head(self, key: str) -> ObjectInfo | None:
        return await self._call("head", key, 0, self.inner.head(key), _nothing)

    async def put(self, key: str, data: Data) -> str:
        return await self._call("put", key, _size(data), self.inner.put(key, data), _nothing)

    async def put_if_absent(self, key: str, data: Data) -> str:
        call = self.inner.put_if_absent(key, data)
        return await self._call("put_if_absent", key, _size(data), call, _nothing)

    async def put_if_match(self, key: str, data: Data, etag: str) -> str:
        call = self.inner.put_if_match(key, data, etag)
        return await self._call("put_if_match", key, _size(data), call, _nothing)

    async def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        return await self._call("list", prefix, 0, self.inner.list(prefix, start_after), _nothing)

    async def delete(self, key: str) -> None:
        await self._call("delete", key, 0, self.inner.delete(key), _nothing)

    async def close(self) -> None:
        await self.inner.close()


def _nothing(_: object) -> int:
    return 0

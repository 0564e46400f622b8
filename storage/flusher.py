"""The upload pipeline: the one writer of this broker's commits after start-up.

Owns: when commits are cut (every flush interval, or as soon as `flush_bytes` wait)
and how big they are (at most `flush_bytes`, or one bigger batch), how many uploads
are in flight at once, the order in which landed commits are folded, and recovery
when an upload fails. Metadata ops (topic created, producer ids taken) ride in the
next commit with the data, so they cost no PUT of their own.

Guarantees (docs/commit-format.md, "Chaining"):
- commits are uploaded concurrently, each at the next sequence number and chained to
  the one before it (`prev`), and folded strictly in order: nothing is acknowledged
  until every commit before it has landed too;
- a failed upload stops the pipeline: the in-flight rest is drained, the log is
  re-read (a commit whose answer was lost is found there), and what did not land is
  rebuilt from the new state, so no data is committed twice or skipped;
- a commit landing after a gap or after someone else's commit does not chain and is
  ignored by every reader, so a replaced broker's in-flight uploads cannot corrupt
  the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidelog.storage.clock import SYSTEM_CLOCK, Clock
from tidelog.storage.commit_format import Chunk, CommitHeader
from tidelog.storage.commit_log import CommitContent, CommitLog, Fenced
from tidelog.storage.object_store import Buffer, ObjectStoreError, PreconditionFailed
from tidelog.storage.stream_state import StreamState

log = logging.getLogger(__name__)

_MIN_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 5.0


class FlushSource(Protocol):
    """What the pipeline uploads: implemented by the LogStore."""

    def unflushed_bytes(self) -> int: ...

    def take_chunks(self, max_bytes: int) -> tuple[list[Chunk], list[Buffer]]:
        """Batches not yet in a launched commit, at most `max_bytes` of them (or one
        bigger batch), marked as launched."""
        ...

    def landed(self) -> None:
        """Commits were folded: advance what depends on committed offsets."""
        ...

    def rewind(self) -> None:
        """Uploads failed: forget launched-but-unlanded batches (they go again)."""
        ...

    def fenced_by_newer_owner(self) -> None: ...

    def lease_renewed(self, sent_at: float) -> None:
        """A commit sent at `sent_at` (the clock's monotonic) landed and took effect."""
        ...


@dataclass
class _Upload:
    seq: int
    header: CommitHeader
    data_start: int
    task: asyncio.Task[None]
    sent_at: float
    ops: list[tuple[list[dict[str, Any]], asyncio.Future[int]]] = field(default_factory=list)


class Flusher:
    def __init__(
        self,
        commit_log: CommitLog[StreamState],
        source: FlushSource,
        *,
        interval_s: float,
        flush_bytes: int,
        max_in_flight: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._log = commit_log
        self._source = source
        self._interval = interval_s
        self._flush_bytes = flush_bytes
        self._max_in_flight = max_in_flight
        self._uploads: deque[_Upload] = deque()
        self._ops: list[tuple[list[dict[str, Any]], asyncio.Future[int]]] = []
        self._drains: list[asyncio.Future[int | None]] = []
        self._wakeup = asyncio.Event()
        self._last_landed: int | None = None
        self._backoff = 0.0
        self._next_flush = 0.0  # clock.monotonic() by which waiting data goes out
        self._task: asyncio.Task[None] | None = None
        self.stopped = False
        self.healthy = True
        self.commits = 0

    # -- API -------------------------------------------------------------------------

    def start(self) -> None:
        self._next_flush = self._clock.monotonic() + self._interval
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})  # unlike suppress(CancelledError), keeps a
            # cancel of this stop() itself; _run catches its own errors
        for upload in self._uploads:
            upload.task.cancel()
        self._fail_all(Fenced("broker stopping"))

    def kick(self) -> None:
        """New data arrived; cut a commit now if enough is waiting."""
        if self._source.unflushed_bytes() >= self._flush_bytes:
            self._wakeup.set()

    async def commit_ops(self, ops: list[dict[str, Any]]) -> int:
        """Append metadata ops with the next commit; returns its seq once folded."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._ops.append((ops, fut))
        self._wakeup.set()
        return await fut

    def queue_ops(self, ops: list[dict[str, Any]]) -> asyncio.Future[int]:
        """`commit_ops` without waiting (at start, before the pipeline runs)."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody awaits it
        self._ops.append((ops, fut))
        self._wakeup.set()
        return fut

    async def drain(self) -> int | None:
        """Upload everything waiting now; the last landed seq, or None on failure/nothing."""
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._drains.append(fut)
        self._backoff = 0.0  # asked for explicitly: try now, even while backing off
        self._wakeup.set()
        return await fut

    # -- the loop --------------------------------------------------------------------

    async def _run(self) -> None:
        force = False
        while not self.stopped:
            try:
                force = await self._step(force)
            except Exception:  # a bug here must not silently stop every upload
                log.exception("upload pipeline error; retrying after a pause")
                self._backoff = _MAX_BACKOFF_S
                await self._clock.sleep(_MIN_BACKOFF_S)

    async def _step(self, force: bool) -> bool:
        """One turn: launch what may go, finish drains, wait, fold finished uploads."""
        while len(self._uploads) < self._max_in_flight and self._launch(force):
            pass
        idle = not self._uploads and not self._ops
        if self._drains and idle and (self._source.unflushed_bytes() == 0 or self._backoff):
            self._finish_drains(None if self._backoff else self._last_landed)
            return False
        force = await self._wait()
        await self._complete_heads()
        return force

    def _launch(self, force: bool) -> bool:
        if self._backoff or self.stopped:
            return False
        now = self._clock.monotonic()
        if not (
            force
            or now >= self._next_flush
            or self._ops
            or self._drains
            or self._source.unflushed_bytes() >= self._flush_bytes
        ):
            return False
        if self._log.state.sealed:
            self._step_down()
            return False
        chunks, data = self._source.take_chunks(self._flush_bytes)
        ops, self._ops = self._ops, []
        # Whatever waited went out now (or nothing did): the next flush is an interval on.
        self._next_flush = now + self._interval
        if not chunks and not ops:
            return False
        prev = self._uploads[-1].header.commit_id if self._uploads else self._log.state.head_id
        seq = (self._uploads[-1].seq if self._uploads else self._log.state.seq) + 1
        content = CommitContent(
            tuple(o for batch, _ in ops for o in batch), tuple(chunks), tuple(data)
        )
        header, parts, data_start = self._log.encode(content, prev)
        task = asyncio.get_running_loop().create_task(self._log.put(seq, parts))
        task.add_done_callback(lambda _: self._wakeup.set())
        self._uploads.append(_Upload(seq, header, data_start, task, self._clock.monotonic(), ops))
        return True

    async def _wait(self) -> bool:
        """Sleep until something happens; True when the interval elapsed (time to flush).

        The flush deadline is an interval after the last launch, not after the last
        wake-up: an upload landing must not push the next flush back."""
        if self._backoff:
            timeout = self._backoff
        elif len(self._uploads) >= self._max_in_flight:
            timeout = self._interval  # a landing upload wakes us first
        else:
            timeout = max(0.0, self._next_flush - self._clock.monotonic())
        try:
            async with self._clock.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            if self._backoff:
                self._backoff = 0.0  # try again
                return True
            return True
        finally:
            self._wakeup.clear()
        return False

    async def _complete_heads(self) -> None:
        while self._uploads and self._uploads[0].task.done():
            head = self._uploads[0]
            error = head.task.exception()
            if error is None:
                self._uploads.popleft()
                self._fold(head)
                continue
            await self._recover(error)
            return

    def _fold(self, upload: _Upload) -> None:
        if not self._log.apply_own(upload.seq, upload.header, upload.data_start):
            raise RuntimeError(f"own commit did not chain seq={upload.seq}")  # a bug
        self.commits += 1
        self._last_landed = upload.seq
        for _, fut in upload.ops:
            if not fut.done():
                fut.set_result(upload.seq)
        if not self.healthy:
            log.info("object store reachable again; uploads resumed")
        self.healthy = True
        self._source.lease_renewed(upload.sent_at)
        self._source.landed()
        self._log.maybe_snapshot()

    async def _recover(self, error: BaseException) -> None:
        """An upload failed: drain, re-read the log, and rebuild what did not land."""
        uploads = list(self._uploads)
        self._uploads.clear()
        await asyncio.gather(*(u.task for u in uploads), return_exceptions=True)
        try:
            await self._log.catch_up()
        except ObjectStoreError as exc:
            error = exc
        landed = self._log.applied_ids
        requeue: list[tuple[list[dict[str, Any]], asyncio.Future[int]]] = []
        for u in uploads:
            if u.header.commit_id in landed:
                self._last_landed = landed[u.header.commit_id]
                for _, fut in u.ops:
                    if not fut.done():
                        fut.set_result(landed[u.header.commit_id])
            else:
                requeue += u.ops
        self._ops = requeue + self._ops
        self._source.rewind()
        self._source.landed()
        if self._log.state.sealed:
            self._step_down()
            return
        if isinstance(error, PreconditionFailed):
            return  # someone else's commit took the position; we folded it, go again
        if self.healthy:
            log.error(
                "upload failed; retrying, produce continues up to the backlog error=%s "
                "backlog_bytes=%d",
                error,
                self._source.unflushed_bytes(),
            )
        self.healthy = False
        self._backoff = min(max(_MIN_BACKOFF_S, self._backoff * 2), _MAX_BACKOFF_S)
        self._finish_drains(None)

    def _step_down(self) -> None:
        """Our stream is sealed: by us when leaving (stop quietly), else we are fenced."""
        self.stopped = True
        state = self._log.state
        self._fail_all(Fenced(f"stream sealed by={state.sealed_by}"))
        if state.sealed_by != state.stream:
            self._source.fenced_by_newer_owner()

    def _fail_all(self, error: BaseException) -> None:
        for _, fut in self._ops:
            if not fut.done():
                fut.set_exception(error)
        self._ops = []
        self._finish_drains(None)

    def _finish_drains(self, result: int | None) -> None:
        drains, self._drains = self._drains, []
        for fut in drains:
            if not fut.done():
                fut.set_result(result)

    def in_flight(self) -> Sequence[int]:
        return [u.seq for u in self._uploads]

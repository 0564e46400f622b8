"""The local write-ahead log: where a produce request is made durable before it is acked.

Owns: the files under `<data-dir>/wal/` (docs/wal-format.md) and the group commit.

    file    <seq:020d>.wal, starting with the 8-byte magic b"TLWAL01\\n"
    record  len u32 BE | crc u32 BE (CRC-32C of payload) | payload
    payload kind u8 | topic id (16 bytes) | topic len u16 BE | topic utf-8 |
            partition u32 BE | body (a record batch with its offsets assigned)

Guarantees:
- `append` returns a future that completes only after the record is fdatasync'ed;
  every append made while one sync runs shares the next sync (group commit);
- a write that fails (ENOSPC, EIO) is cut from the file before its appends fail, so
  no record of a failed append can be replayed later; each failed record's `undo` runs,
  newest first, before its future fails. From then on the WAL is not `writable`:
  appends raise at once until a probe write (every `probe_interval_s`) succeeds, and
  then appends work again by themselves (docs/wal-format.md, "A full disk");
- recovery stops at the first torn or corrupt record of the newest file and cuts the
  file there, so a crash mid-write loses only records that were never acknowledged;
- a file is deleted only once every record in it is reported committed to the bucket.
All file I/O runs on one dedicated thread, in append order (`on_sync` is told each
group's write and fdatasync times there).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import mmap
import os
import struct
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import crc32c

from tidelog.storage.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

MAGIC = b"TLWAL01\n"
KIND_BATCH = 1
_RECORD = struct.Struct(">II")
_PAYLOAD_HEAD = struct.Struct(">B16sH")
_PARTITION = struct.Struct(">I")
_SUFFIX = ".wal"
_IOV_MAX = 512
_PAGE = mmap.PAGESIZE
_DONTNEED = os.POSIX_FADV_DONTNEED
_PROBE_FILE = "PROBE"
_PROBE_MIN_BYTES = 64 << 10
_PROBE_MAX_BYTES = 16 << 20

PartitionKey = tuple[str, int]
_T = TypeVar("_T")


class WalError(Exception):
    """The WAL could not be written or read; the broker must not ack anything more."""


@dataclass(frozen=True, slots=True)
class WalEntry:
    kind: int
    topic_id: str
    topic: str
    partition: int
    body: bytes


def encode_payload(kind: int, topic_id: str, topic: str, partition: int) -> bytes:
    """The payload head; the body (batch bytes) follows it without a copy."""
    name = topic.encode()
    return (
        _PAYLOAD_HEAD.pack(kind, uuid.UUID(topic_id).bytes, len(name))
        + name
        + _PARTITION.pack(partition)
    )


def _decode_payload(payload: bytes) -> WalEntry:
    kind, tid, name_len = _PAYLOAD_HEAD.unpack_from(payload)
    at = _PAYLOAD_HEAD.size
    topic = payload[at : at + name_len].decode()
    at += name_len
    (partition,) = _PARTITION.unpack_from(payload, at)
    return WalEntry(kind, str(uuid.UUID(bytes=tid)), topic, partition, payload[at + 4 :])


def _file_name(seq: int) -> str:
    return f"{seq:020d}{_SUFFIX}"


def wal_files(directory: Path) -> list[tuple[int, Path]]:
    """The WAL files of a directory with their numbers, oldest first."""
    found = []
    for path in directory.iterdir():
        if path.suffix == _SUFFIX and path.stem.isdigit():
            found.append((int(path.stem), path))
    return sorted(found)


def scan_wal_file(data: bytes) -> tuple[list[WalEntry], int | None]:
    """The intact records of one file's bytes, and where a torn or corrupt record starts
    (None if the whole file is intact; 0 for a missing magic). Reads only."""
    if data[: len(MAGIC)] != MAGIC:
        return [], 0
    entries: list[WalEntry] = []
    at = len(MAGIC)
    while at < len(data):
        if at + _RECORD.size > len(data):
            return entries, at
        length, crc = _RECORD.unpack_from(data, at)
        end = at + _RECORD.size + length
        if end > len(data) or crc32c.crc32c(data[at + _RECORD.size : end]) != crc:
            return entries, at
        entries.append(_decode_payload(data[at + _RECORD.size : end]))
        at = end
    return entries, None


def _read_file(path: Path, *, last: bool) -> list[WalEntry]:
    """Recovery's read: a torn tail of the newest file is cut (made durable); damage
    anywhere else refuses to start."""
    data = path.read_bytes()
    entries, torn_at = scan_wal_file(data)
    if torn_at is None:
        return entries
    if not last:
        raise WalError(f"corrupt record inside a sealed wal file path={path} at={torn_at}")
    if torn_at == 0 and len(data) >= len(MAGIC):
        raise WalError(f"bad wal file magic path={path}")
    log.warning(
        "wal torn tail cut path=%s at=%d dropped_bytes=%d", path, torn_at, len(data) - torn_at
    )
    _truncate(path, torn_at)
    return entries


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def read_wal(directory: Path) -> list[tuple[int, WalEntry]]:
    """Every intact record with the number of the file holding it, oldest first."""
    files = wal_files(directory)
    out: list[tuple[int, WalEntry]] = []
    for i, (seq, path) in enumerate(files):
        out.extend((seq, e) for e in _read_file(path, last=i == len(files) - 1))
    return out


Undo = Callable[[], None]


class WalWriter:
    """Appends records and fsyncs them in groups; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 256 << 20,
        fsync: bool = True,
        probe_interval_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self._clock = clock
        self.on_sync: Callable[[float, float, int], None] | None = None  # write s, sync s, bytes
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._probe_interval_s = probe_interval_s
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tidelog-wal")
        self._pending: list[bytes | bytearray | memoryview] = []
        self._pending_marks: list[tuple[PartitionKey, int]] = []
        self._pending_undos: list[Undo | None] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._sync_task: asyncio.Task[None] | None = None
        # Set while the WAL cannot write: appends are refused until a probe succeeds.
        self._broken: OSError | None = None
        self._broken_at = 0.0
        self._probe_task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        # Appends of a failed write whose bytes could not be cut from the file yet: they
        # fail only once the file is clean again (until then their outcome is unknown).
        self._held: list[tuple[list[asyncio.Future[None]], list[Undo | None]]] = []
        # Touched only on the WAL thread:
        self._fd = -1
        self._file_seq = 0
        self._file_size = 0  # bytes of the current file that are written and synced
        self._dirty = False  # the file holds bytes past _file_size (a failed write)
        self._dropped = 0  # bytes at the start of the file already out of the page cache
        self._marks: dict[int, dict[PartitionKey, int]] = {}
        self.pending_bytes = 0

    async def open(self, recovered_marks: dict[int, dict[PartitionKey, int]]) -> None:
        """Start a fresh file after the ones recovery read; their marks allow deleting them."""
        self._dir.mkdir(parents=True, exist_ok=True)
        await self._run(self._open_sync, recovered_marks)

    def _open_sync(self, recovered_marks: dict[int, dict[PartitionKey, int]]) -> None:
        existing = wal_files(self._dir)
        self._marks = {seq: dict(recovered_marks.get(seq, {})) for seq, _ in existing}
        self._new_file(existing[-1][0] + 1 if existing else 0)

    def _new_file(self, seq: int) -> None:
        """Start file `seq`; the current one stays current if this fails (a full disk)."""
        path = self._dir / _file_name(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            if os.write(fd, MAGIC) != len(MAGIC):
                raise OSError(errno.ENOSPC, f"short write of the wal magic path={path}")
            os.fsync(fd)
            _fsync_dir(self._dir)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._file_seq, self._file_size, self._dropped = seq, len(MAGIC), 0
        self._dirty = False
        self._marks[seq] = {}

    def _drop_synced_pages(self) -> None:
        """Hand the page cache back the whole pages this file has on disk now.

        The WAL is read only by recovery, so its pages are dead weight once synced. Freed
        at once, they are the pages the next appends get; kept, every append takes fresh
        pages, and on a VM fresh pages are what writes are slowest at (docs/wal-format.md).
        The partly filled last page stays: dropping it would make the next append read it
        back from disk."""
        end = self._file_size - self._file_size % _PAGE
        if end > self._dropped:
            with contextlib.suppress(OSError):  # a hint: the data is synced either way
                os.posix_fadvise(self._fd, self._dropped, end - self._dropped, _DONTNEED)
            self._dropped = end

    @property
    def writable(self) -> bool:
        """False from a failed write until a probe write succeeds: appends are refused."""
        return self._broken is None

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def append(
        self,
        head: bytes,
        body: bytes | bytearray | memoryview,
        mark: tuple[PartitionKey, int],
        undo: Undo | None = None,
    ) -> asyncio.Future[None]:
        """Queue one record; the future completes once it is on disk. If its write fails,
        `undo` runs (synchronously, newest record first) just before the future fails."""
        if self._broken is not None:
            raise WalError(
                "wal cannot write; appends are refused until a probe write succeeds "
                f"error={self._broken}"
            )
        payload_len = len(head) + len(body)
        crc = crc32c.crc32c(body, crc32c.crc32c(head))
        self._pending += (_RECORD.pack(payload_len, crc), head, body)
        self._pending_marks.append(mark)
        self._pending_undos.append(undo)
        self.pending_bytes += payload_len
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._sync_task is None:
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop())
        return fut

    async def _sync_loop(self) -> None:
        try:
            while self._waiters:
                parts, marks, waiters = self._pending, self._pending_marks, self._waiters
                undos = self._pending_undos
                self._pending, self._pending_marks, self._waiters = [], [], []
                self._pending_undos = []
                self.pending_bytes = 0
                try:
                    await self._run(self._write_sync, parts, marks)
                except OSError as exc:
                    # Appends queued behind the failed write fail with it: their offsets
                    # follow the failed records', which are given back.
                    self._write_failed(
                        exc,
                        waiters + self._waiters,
                        undos + self._pending_undos,
                        sum(len(p) for p in parts),
                    )
                    self._pending, self._pending_marks, self._waiters = [], [], []
                    self._pending_undos = []
                    self.pending_bytes = 0
                    return
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._sync_task = None

    def _write_failed(
        self,
        exc: OSError,
        waiters: list[asyncio.Future[None]],
        undos: list[Undo | None],
        size: int,
    ) -> None:
        if self._broken is None:
            self._broken, self._broken_at = exc, self._clock.monotonic()
            self._writable.clear()
            log.error(
                "wal write failed; produce is answered KAFKA_STORAGE_ERROR until a probe "
                "write succeeds error=%s dir=%s probe_every_s=%g",
                exc,
                self._dir,
                self._probe_interval_s,
            )
        self._held.append((waiters, undos))
        if not self._dirty:
            self._release_held()
        else:
            log.critical(
                "wal tail could not be cut after a failed write; the failed appends stay "
                "unanswered until it is dir=%s",
                self._dir,
            )
        if self._probe_task is None:
            probe_bytes = min(max(size, _PROBE_MIN_BYTES), _PROBE_MAX_BYTES)
            loop = asyncio.get_running_loop()
            self._probe_task = loop.create_task(self._probe_loop(probe_bytes))

    def _release_held(self) -> None:
        """Fail the appends of failed writes, now that none of their bytes is in the file."""
        held, self._held = self._held, []
        err = WalError(f"wal write failed error={self._broken}")
        for waiters, undos in held:
            for undo in reversed(undos):
                if undo is not None:
                    undo()
            for w in waiters:
                if not w.done():
                    w.set_exception(err)

    async def _probe_loop(self, probe_bytes: int) -> None:
        """Until a probe write succeeds: cut the file back if it is not yet, then write and
        sync `probe_bytes` (at least what the failed write needed) to a scratch file."""
        try:
            while True:
                await self._clock.sleep(self._probe_interval_s)
                try:
                    await self._run(self._probe_sync, probe_bytes)
                except OSError as exc:
                    log.debug("wal probe write failed error=%s", exc)
                    continue
                finally:
                    if self._held and not self._dirty:
                        self._release_held()
                break
        finally:
            self._probe_task = None
        log.info(
            "wal writable again; produce resumed failed_for_ms=%d dir=%s",
            (self._clock.monotonic() - self._broken_at) * 1000,
            self._dir,
        )
        self._broken = None
        self._writable.set()

    def _probe_sync(self, size: int) -> None:
        if self._dirty:
            self._cut_tail()
        path = self._dir / _PROBE_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            block = bytes(min(size, 1 << 20))
            written = 0
            while written < size:
                written += os.write(fd, block[: size - written])
            if self._fsync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()

    def _write_sync(
        self, parts: list[bytes | bytearray | memoryview], marks: list[tuple[PartitionKey, int]]
    ) -> None:
        size = sum(len(p) for p in parts)
        if self._file_size > len(MAGIC) and self._file_size + size > self._segment_bytes:
            self._new_file(self._file_seq + 1)  # nothing written yet if this fails
        started = time.perf_counter()
        try:
            for i in range(0, len(parts), _IOV_MAX):
                chunk = parts[i : i + _IOV_MAX]
                want = sum(len(p) for p in chunk)
                done = os.writev(self._fd, chunk)
                if done != want:  # short write: finish it the slow way
                    rest = b"".join(chunk)[done:]
                    while rest:
                        rest = rest[os.write(self._fd, rest) :]
            written = time.perf_counter()
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError:
            # Part of the group may be in the file (a full disk takes what fits): cut it
            # away now, so no record whose append fails is ever replayed.
            self._dirty = True
            with contextlib.suppress(OSError):
                self._cut_tail()
            raise
        self._file_size += size
        if self.on_sync is not None:
            self.on_sync(time.perf_counter() - started, time.perf_counter() - written, size)
        if self._fsync:
            self._drop_synced_pages()
        file_marks = self._marks[self._file_seq]
        for key, end in marks:
            if file_marks.get(key, -1) < end:
                file_marks[key] = end

    def _cut_tail(self) -> None:
        """Truncate the current file to what was written and synced before."""
        os.ftruncate(self._fd, self._file_size)
        if self._fsync:
            os.fdatasync(self._fd)
        self._dirty = False

    async def release(self, committed_end: Callable[[PartitionKey], int]) -> int:
        """Delete every WAL file whose records are all committed to the bucket."""
        return await self._run(self._release_sync, committed_end)

    def _release_sync(self, committed_end: Callable[[PartitionKey], int]) -> int:
        def done(seq: int) -> bool:
            return all(committed_end(k) >= end for k, end in self._marks[seq].items())

        if self._file_size > len(MAGIC) and done(self._file_seq) and not self._dirty:
            try:
                self._new_file(self._file_seq + 1)
            except OSError as exc:  # a full disk: keep the current file, free the others
                log.warning("wal file not rolled; keeping the current one error=%s", exc)
        removed = 0
        for seq in sorted(self._marks):
            if seq != self._file_seq and done(seq):
                (self._dir / _file_name(seq)).unlink(missing_ok=True)
                del self._marks[seq]
                removed += 1
        return removed

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def close(self) -> None:
        while self._sync_task is not None:
            await asyncio.sleep(0)  # a yield, not a wait: lets a starting sync begin
            if self._sync_task is not None:
                await asyncio.wait({self._sync_task})
        if self._probe_task is not None:
            self._probe_task.cancel()
            await asyncio.wait({self._probe_task})
        await self._run(self._close_sync)
        if self._held:
            if self._dirty:  # a failed write we could never cut: say so, then answer them
                log.critical(
                    "wal closed with a failed write still in its file; its records may be "
                    "replayed at the next start dir=%s",
                    self._dir,
                )
            self._release_held()
        self._executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._fd >= 0:
            if self._dirty:
                with contextlib.suppress(OSError):
                    self._cut_tail()
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

"""The local write-ahead log: where a produce request is made durable before it is acked.

Owns: the files under `<data-dir>/wal/` (docs/wal-format.md) and the group commit.

    file    <seq:020d>.wal, starting with the 8-byte magic b"TLWAL01\\n"
    record  len u32 BE | crc u32 BE (CRC-32C of payload) | payload
    payload kind u8 | topic id (16 bytes) | topic len u16 BE | topic utf-8 |
            partition u32 BE | body (a record batch with its offsets assigned)

Guarantees:
- `append` returns a future that completes only after the record is fdatasync'ed;
  every append made while one sync runs shares the next sync (group commit);
- recovery stops at the first torn or corrupt record of the newest file and cuts the
  file there, so a crash mid-write loses only records that were never acknowledged;
- a file is deleted only once every record in it is reported committed to the bucket.
All file I/O runs on one dedicated thread, in append order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import struct
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import crc32c

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


class WalWriter:
    """Appends records and fsyncs them in groups; see the module docstring."""

    def __init__(self, directory: Path, *, segment_bytes: int = 256 << 20, fsync: bool = True):
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tidelog-wal")
        self._pending: list[bytes | bytearray | memoryview] = []
        self._pending_marks: list[tuple[PartitionKey, int]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        # Touched only on the WAL thread:
        self._fd = -1
        self._file_seq = 0
        self._file_size = 0
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
        if self._fd >= 0:
            os.close(self._fd)
        path = self._dir / _file_name(seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.write(self._fd, MAGIC)
        os.fsync(self._fd)
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._file_seq, self._file_size, self._dropped = seq, len(MAGIC), 0
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

    def append(
        self, head: bytes, body: bytes | bytearray | memoryview, mark: tuple[PartitionKey, int]
    ) -> asyncio.Future[None]:
        """Queue one record; the future completes once it is on disk."""
        if self._failed is not None:
            raise WalError("wal failed earlier; refusing appends") from self._failed
        payload_len = len(head) + len(body)
        crc = crc32c.crc32c(body, crc32c.crc32c(head))
        self._pending += (_RECORD.pack(payload_len, crc), head, body)
        self._pending_marks.append(mark)
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
                self._pending, self._pending_marks, self._waiters = [], [], []
                self.pending_bytes = 0
                try:
                    await self._run(self._write_sync, parts, marks)
                except OSError as exc:
                    self._failed = exc
                    log.critical("wal write failed; no further acks error=%s", exc)
                    err = WalError(f"wal write failed error={exc}")
                    for w in waiters + self._waiters:
                        if not w.done():
                            w.set_exception(err)
                    self._waiters = []
                    return
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._sync_task = None

    def _write_sync(
        self, parts: list[bytes | bytearray | memoryview], marks: list[tuple[PartitionKey, int]]
    ) -> None:
        size = sum(len(p) for p in parts)
        if self._file_size > len(MAGIC) and self._file_size + size > self._segment_bytes:
            self._new_file(self._file_seq + 1)
        for i in range(0, len(parts), _IOV_MAX):
            chunk = parts[i : i + _IOV_MAX]
            want = sum(len(p) for p in chunk)
            done = os.writev(self._fd, chunk)
            if done != want:  # short write: finish it the slow way
                rest = b"".join(chunk)[done:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
        self._file_size += size
        if self._fsync:
            os.fdatasync(self._fd)
            self._drop_synced_pages()
        file_marks = self._marks[self._file_seq]
        for key, end in marks:
            if file_marks.get(key, -1) < end:
                file_marks[key] = end

    async def release(self, committed_end: Callable[[PartitionKey], int]) -> int:
        """Delete every WAL file whose records are all committed to the bucket."""
        return await self._run(self._release_sync, committed_end)

    def _release_sync(self, committed_end: Callable[[PartitionKey], int]) -> int:
        def done(seq: int) -> bool:
            return all(committed_end(k) >= end for k, end in self._marks[seq].items())

        if self._file_size > len(MAGIC) and done(self._file_seq):
            self._new_file(self._file_seq + 1)
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
            await asyncio.sleep(0)
            if self._sync_task is not None:
                await asyncio.wait({self._sync_task})
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

"""The object store on a local directory: the embedded default, shareable by processes.

Owns: the mapping of keys to files under one root, and the root's lock file. Guarantees:
- a key is a file at `root/key`; keys with '..', '.', empty parts, a leading '/' or a
  part starting with `.tidelog` (temp and lock files) are refused with ValueError;
- a reader sees a whole old object or a whole new one, never a torn write: data goes to
  a temp file in the target directory, is fsynced, then renamed (put, put_if_match) or
  hard-linked (put_if_absent, which fails if the name exists); the directory is fsynced
  before the call returns;
- every change of a name (rename, link, unlink) happens under an exclusive `flock` on
  `root/.tidelog.lock`, so compare-and-replace is atomic against other threads and other
  processes sharing the directory;
- the etag is built from the file's inode, mtime and size: every write makes a new file
  (temp + rename or link), so every write changes it, whichever process wrote it, and
  `head` and `list` cost one stat per key instead of reading the data (commit objects
  are many megabytes, and the commit log is listed on every catch-up).
Disk errors surface as ObjectStoreUnavailable. A key cannot also be a directory of other
keys ("a" and "a/b"): that raises ValueError on write and reads as missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from tidelog.storage.object_store import (
    Data,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreUnavailable,
    PreconditionFailed,
)

_RESERVED = ".tidelog"
_LOCK_NAME = ".tidelog.lock"
_IOV_MAX = 512
_TEMP_PREFIX = ".tidelog-tmp-"


class LocalObjectStore:
    """ObjectStore on a directory; see the module docstring for the guarantees."""

    def __init__(self, root: Path) -> None:
        self._root = root.absolute()
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock_path = self._root / _LOCK_NAME

    @property
    def url(self) -> str:
        return self._root.as_uri()

    @property
    def root(self) -> Path:
        return self._root

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        return await asyncio.to_thread(self._read_all, key, path)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"negative range key={key} start={start} length={length}")
        path = self._path(key)
        return await asyncio.to_thread(self._read_range, key, path, start, length)

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return await asyncio.to_thread(self._head, key, path)

    async def put(self, key: str, data: Data) -> str:
        path = self._path(key)
        return await asyncio.to_thread(self._put, key, path, data)

    async def put_if_absent(self, key: str, data: Data) -> str:
        path = self._path(key)
        return await asyncio.to_thread(self._put_if_absent, key, path, data)

    async def put_if_match(self, key: str, data: Data, etag: str) -> str:
        path = self._path(key)
        return await asyncio.to_thread(self._put_if_match, key, path, data, etag)

    async def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        if prefix:
            _check_prefix(prefix)
        return await asyncio.to_thread(_list, self._root, prefix, start_after)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._delete, key, path)

    async def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    # -- blocking halves, run in a worker thread -------------------------------------

    def _path(self, key: str) -> Path:
        check_key(key)
        return self._root / key

    def _read_all(self, key: str, path: Path) -> bytes:
        with _io_errors(key), _not_found_as(key):
            return path.read_bytes()

    def _read_range(self, key: str, path: Path, start: int, length: int) -> bytes:
        with _io_errors(key), _not_found_as(key), path.open("rb") as f:
            f.seek(start)
            return f.read(length)

    def _head(self, key: str, path: Path) -> ObjectInfo | None:
        with _io_errors(key):
            try:
                return _info(key, path)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None

    def _put(self, key: str, path: Path, data: Data) -> str:
        with _io_errors(key):
            with self._staged(key, path, data) as temp, self._locked():
                os.replace(temp, path)
                etag = _etag(path)
            _fsync_dir(path.parent)
        return etag

    def _put_if_absent(self, key: str, path: Path, data: Data) -> str:
        with _io_errors(key):
            with self._staged(key, path, data) as temp, self._locked():
                try:
                    os.link(temp, path)  # unlike rename, link refuses an existing name
                except FileExistsError:
                    raise PreconditionFailed(f"object already exists key={key}") from None
                etag = _etag(path)
            _fsync_dir(path.parent)
        return etag

    def _put_if_match(self, key: str, path: Path, data: Data, etag: str) -> str:
        with _io_errors(key):
            with self._staged(key, path, data) as temp, self._locked():
                try:
                    current = _etag(path)
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    raise PreconditionFailed(f"object does not exist key={key}") from None
                if current != etag:
                    raise PreconditionFailed(
                        f"object changed key={key} expected_etag={etag} current_etag={current}"
                    )
                os.replace(temp, path)
                etag = _etag(path)
            _fsync_dir(path.parent)
        return etag

    def _delete(self, key: str, path: Path) -> None:
        with _io_errors(key):
            with (
                self._locked(),
                contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError),
            ):
                path.unlink()
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                _fsync_dir(path.parent)

    @contextlib.contextmanager
    def _staged(self, key: str, path: Path, data: Data) -> Iterator[Path]:
        """A durable temp file holding `data` next to `path`, removed on the way out."""
        _make_parent(key, path)
        if path.is_dir():
            raise ValueError(f"key is a directory of other keys key={key}")
        temp = path.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            yield temp
        finally:
            temp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive against every thread and process using this root.

        flock locks belong to an open file description, so each call opens its own: two
        threads of one process then exclude each other exactly as two processes do.
        """
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def check_key(key: str) -> None:
    """Raise ValueError unless `key` names a file safely inside the root."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise ValueError(f"invalid object key key={key!r}")
    _check_parts(key)


def _check_prefix(prefix: str) -> None:
    if prefix.startswith("/"):
        raise ValueError(f"invalid list prefix prefix={prefix!r}")
    _check_parts(prefix.rstrip("/"))


def _check_parts(path: str) -> None:
    for part in path.split("/"):
        if part in ("", ".", "..") or part.startswith(_RESERVED) or "\0" in part:
            raise ValueError(f"invalid object key part part={part!r} key={path!r}")


def _list(root: Path, prefix: str, start_after: str | None) -> list[ObjectInfo]:
    base = root / prefix.rpartition("/")[0]
    keys = sorted(
        key
        for key in _walk(root, base)
        if key.startswith(prefix) and (start_after is None or key > start_after)
    )
    infos = []
    with _io_errors(prefix):
        for key in keys:
            with contextlib.suppress(FileNotFoundError):  # deleted while listing
                infos.append(_info(key, root / key))
    return infos


def _walk(root: Path, base: Path) -> Iterator[str]:
    """Every key under `base`, skipping temp and lock files; a missing base is empty."""

    def raise_unless_missing(exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError | NotADirectoryError):
            raise ObjectStoreUnavailable(f"cannot list directory error={exc}") from exc

    for dirpath, dirnames, filenames in os.walk(base, onerror=raise_unless_missing):
        dirnames[:] = [d for d in dirnames if not d.startswith(_RESERVED)]
        relative = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            if not name.startswith(_RESERVED):
                yield name if relative == "." else f"{relative}/{name}"


def _etag(path: Path) -> str:
    return _etag_of(path.stat())


def _etag_of(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


def _info(key: str, path: Path) -> ObjectInfo:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(str(path))
    return ObjectInfo(key=key, size=st.st_size, etag=_etag_of(st))


def _make_parent(key: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"a parent of the key is an object key={key}") from None


def _write_all(fd: int, data: Data) -> None:
    parts = data if isinstance(data, list) else [data]
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while written and views:  # drop what was written, keep a partly written view
            if written >= len(views[0]):
                written -= len(views.pop(0))
            else:
                views[0] = views[0][written:]
                written = 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _not_found_as(key: str) -> Iterator[None]:
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ObjectNotFound(f"no such object key={key}") from None


@contextlib.contextmanager
def _io_errors(key: str) -> Iterator[None]:
    """Disk trouble becomes ObjectStoreUnavailable; our own errors pass through."""
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError):
        raise
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "unknown")
        raise ObjectStoreUnavailable(
            f"local store i/o failed key={key} errno={code} error={exc.strerror}"
        ) from exc

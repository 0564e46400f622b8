"""A full disk for the WAL's unit tests: os.writev / os.write fail as on a full filesystem.

While `full` is set, the first write of a call goes half through (a short write, as the
kernel gives when only part of the data fits) and every later one raises ENOSPC, so a
record is left half written in the file exactly as a real full disk leaves it. While
`broken_truncate` is also set, ftruncate fails too (EIO), as on a failing device.
"""

from __future__ import annotations

import errno
import os

import pytest


class FullDisk:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.broken_truncate = False
        self._writev, self._write, self._ftruncate = os.writev, os.write, os.ftruncate
        monkeypatch.setattr(os, "writev", self.writev)
        monkeypatch.setattr(os, "write", self.write)
        monkeypatch.setattr(os, "ftruncate", self.ftruncate)

    def writev(self, fd: int, parts: list[bytes]) -> int:
        if not self.full:
            return self._writev(fd, parts)
        data = b"".join(parts)
        return self._write(fd, data[: len(data) // 2])

    def write(self, fd: int, data: bytes) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._write(fd, data)

    def ftruncate(self, fd: int, size: int) -> None:
        if self.full and self.broken_truncate:
            raise OSError(errno.EIO, "Input/output error")
        self._ftruncate(fd, size)

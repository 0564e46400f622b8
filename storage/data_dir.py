"""The broker's data dir: one live broker at a time, and whose WAL it holds.

Owns: `<data-dir>/LOCK` (an exclusive `flock` held for the broker's life: the kernel
drops it when the process dies, even by kill -9) and `<data-dir>/wal/OWNER` (the
stream id of the broker incarnation that held the data dir, in both durability
modes, so a broker handed this dir knows whose partitions it must take over before
replaying the WAL, and that this incarnation is dead: it held the lock we now hold).

Guarantees: a second broker on a data dir that a live broker holds fails at start with
a one-line error instead of sharing its WAL (a WAL volume is attached to one machine).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirInUse(OSError):
    """Another live process holds the data dir."""


def lock_data_dir(data_dir: Path) -> int:
    """Take the data dir; returns the lock's fd (close it to let go)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirInUse(
            f"data dir is in use by another live broker data_dir={data_dir} "
            "(a WAL volume belongs to one broker at a time)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def read_wal_owner(wal_dir: Path) -> str | None:
    try:
        text = (wal_dir / "OWNER").read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def write_wal_owner(wal_dir: Path, stream: str) -> None:
    tmp = wal_dir / "OWNER.tmp"
    tmp.write_text(stream + "\n")
    os.replace(tmp, wal_dir / "OWNER")

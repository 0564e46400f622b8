"""How every payments SQLite database is opened: WAL journal, a busy timeout, explicit
transactions (`isolation_level=None`, so nothing is committed behind our back).

Owns: `connect` and the `transaction` context manager (BEGIN IMMEDIATE ... COMMIT, ROLLBACK
on any exception). `durable=True` (the write model) fsyncs every commit; read models use
synchronous=NORMAL: a power cut may drop their last transactions, but always together
with the offsets stored in them, so they replay what they lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(
    path: Path | str, *, durable: bool = False, readonly: bool = False, busy_ms: int = 30_000
) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
        )
        db.execute("PRAGMA busy_timeout=30000")
        return db
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    # set last: opening (the journal-mode switch) may wait for a lock whatever busy_ms is
    db.execute(f"PRAGMA busy_timeout={busy_ms}")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")

"""Every object key tidelog writes to the bucket, built and parsed in one place.

Owns: the names of objects. Guarantees: ids are zero-padded to a fixed width so that
lexical order (what `ObjectStore.list` returns) is numeric order, and every key this
module builds is parsed back to the same value by its `parse_*` twin.

Layout under the store root (see docs/bucket-layout.md):

    log/<seq:020d>.tlc          commit objects: metadata ops + data chunks, created once
    snapshots/<seq:020d>.json   the folded state as of commit <seq>, written by any broker
"""

from __future__ import annotations

LOG_PREFIX = "log/"
SNAPSHOT_PREFIX = "snapshots/"
_COMMIT_SUFFIX = ".tlc"
_SNAPSHOT_SUFFIX = ".json"
_SEQ_WIDTH = 20
MAX_SEQ = 10**_SEQ_WIDTH - 1


def _padded(seq: int) -> str:
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"sequence number out of range seq={seq}")
    return f"{seq:0{_SEQ_WIDTH}d}"


def _parse(key: str, prefix: str, suffix: str) -> int:
    if not (key.startswith(prefix) and key.endswith(suffix)):
        raise ValueError(f"not a {prefix.rstrip('/')} key key={key!r}")
    digits = key[len(prefix) : len(key) - len(suffix)]
    if len(digits) != _SEQ_WIDTH or not digits.isdigit():
        raise ValueError(f"malformed sequence in key key={key!r}")
    return int(digits)


def commit_key(seq: int) -> str:
    return f"{LOG_PREFIX}{_padded(seq)}{_COMMIT_SUFFIX}"


def parse_commit_key(key: str) -> int:
    return _parse(key, LOG_PREFIX, _COMMIT_SUFFIX)


def snapshot_key(seq: int) -> str:
    return f"{SNAPSHOT_PREFIX}{_padded(seq)}{_SNAPSHOT_SUFFIX}"


def parse_snapshot_key(key: str) -> int:
    return _parse(key, SNAPSHOT_PREFIX, _SNAPSHOT_SUFFIX)

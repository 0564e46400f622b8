"""Every object key tidelog writes to the bucket, built and parsed in one place.

Owns: the names of objects. Guarantees: ids are zero-padded to a fixed width so that
lexical order (what `ObjectStore.list` returns) is numeric order, and every key this
module builds is parsed back to the same value by its `parse_*` twin.

Layout under the store root (see docs/bucket-layout.md):

    log/<seq:020d>.tlc                        the metadata log: topics, members, owners
    snapshots/<seq:020d>.json                 its folded state as of commit <seq>
    streams/<stream>/log/<seq:020d>.tlc       one broker incarnation's commits: data + ops
    streams/<stream>/snapshots/<seq:020d>.json

A stream id is `<epoch:020d>-n<node>`: the epoch is the metadata-log seq of the
broker's `join`, so ids are unique and list in join order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


STREAMS_PREFIX = "streams/"
_STREAM_ID = re.compile(r"^(\d{20})-n(\d+)$")


def stream_id(node: int, epoch: int) -> str:
    return f"{_padded(epoch)}-n{node}"


def parse_stream_id(stream: str) -> tuple[int, int]:
    """(node, epoch) of a stream id."""
    m = _STREAM_ID.match(stream)
    if m is None:
        raise ValueError(f"malformed stream id stream={stream!r}")
    return int(m.group(2)), int(m.group(1))


@dataclass(frozen=True, slots=True)
class LogLayout:
    """Where one commit log and its snapshots live: the metadata log or a stream."""

    root: str = ""

    @property
    def log_prefix(self) -> str:
        return f"{self.root}{LOG_PREFIX}"

    @property
    def snapshot_prefix(self) -> str:
        return f"{self.root}{SNAPSHOT_PREFIX}"

    def commit_key(self, seq: int) -> str:
        return f"{self.log_prefix}{_padded(seq)}{_COMMIT_SUFFIX}"

    def parse_commit_key(self, key: str) -> int:
        return _parse(key, self.log_prefix, _COMMIT_SUFFIX)

    def snapshot_key(self, seq: int) -> str:
        return f"{self.snapshot_prefix}{_padded(seq)}{_SNAPSHOT_SUFFIX}"

    def parse_snapshot_key(self, key: str) -> int:
        return _parse(key, self.snapshot_prefix, _SNAPSHOT_SUFFIX)


META = LogLayout()


def stream_layout(stream: str) -> LogLayout:
    parse_stream_id(stream)
    return LogLayout(f"{STREAMS_PREFIX}{stream}/")


def stream_commit_key(stream: str, seq: int) -> str:
    """`stream_layout(stream).commit_key(seq)` without re-validating the id (read path)."""
    return LogLayout(f"{STREAMS_PREFIX}{stream}/").commit_key(seq)


SEGMENTS_PREFIX = "segments/"
_SEGMENT_KEY = re.compile(
    r"^segments/([0-9a-f-]{32,36})/(\d{10})/(\d{20})-(\d{13})-([0-9a-f]{8})\.tls$"
)


@dataclass(frozen=True, slots=True)
class SegmentName:
    """A per-partition segment object: one partition's batches `[base, ...)`, written
    at wall time `created_ms` by the partition's owner (docs/segments.md)."""

    topic_id: str
    partition: int
    base_offset: int
    created_ms: int
    nonce: str

    @property
    def key(self) -> str:
        return (
            f"{segment_prefix(self.topic_id, self.partition)}"
            f"{_padded(self.base_offset)}-{self.created_ms:013d}-{self.nonce}.tls"
        )


def segment_prefix(topic_id: str, partition: int) -> str:
    return f"{SEGMENTS_PREFIX}{topic_id}/{partition:010d}/"


def parse_segment_key(key: str) -> SegmentName:
    m = _SEGMENT_KEY.match(key)
    if m is None:
        raise ValueError(f"not a segment key key={key!r}")
    topic_id, partition, base, created, nonce = m.groups()
    return SegmentName(topic_id, int(partition), int(base), int(created), nonce)

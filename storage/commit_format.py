"""The commit object: one object per flush, holding metadata ops and partition data.

Owns: the byte layout of `log/<seq>.tlc` objects (docs/commit-format.md). Pure: no I/O.

    magic      4 bytes  b"TLC1"
    header_len u32 BE
    header_crc u32 BE   CRC-32C of the header bytes
    header     JSON (utf-8): writer, ops, chunk index
    data       the chunks, back to back; chunk i is data[pos:pos+len]

Guarantees: a header that fails its length or CRC check raises `CorruptCommit`
rather than being half-read; each chunk carries its own CRC-32C so a ranged read of
one partition's bytes is verified without fetching the rest (storage/log_reader.py).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import crc32c

MAGIC = b"TLC1"
_PREFIX = struct.Struct(">4sII")
PREFIX_SIZE = _PREFIX.size
FORMAT_VERSION = 2  # 2: metadata log + per-broker streams (docs/bucket-layout.md)


class CorruptCommit(Exception):
    """A commit object does not parse: wrong magic, bad length or CRC mismatch."""


@dataclass(frozen=True, slots=True)
class ProducerBatch:
    """The idempotence facts of one batch: enough to deduplicate a retry."""

    producer_id: int
    producer_epoch: int
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int

    def to_json(self) -> list[int]:
        return [
            self.producer_id,
            self.producer_epoch,
            self.first_seq,
            self.last_seq,
            self.base_offset,
            self.last_offset,
        ]

    @classmethod
    def from_json(cls, raw: list[int]) -> ProducerBatch:
        pid, epoch, first, last, base, last_off = raw
        return cls(pid, epoch, first, last, base, last_off)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One partition's batches inside a commit: offsets [base_offset, end_offset)."""

    topic_id: str
    topic: str
    partition: int
    base_offset: int
    end_offset: int
    max_timestamp: int
    position: int
    length: int
    crc: int
    producers: tuple[ProducerBatch, ...] = ()
    # Transaction events: (producer id, epoch, 0 begin | 1 commit | 2 abort, offset).
    txns: tuple[tuple[int, int, int, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        raw = {
            "topic_id": self.topic_id,
            "topic": self.topic,
            "partition": self.partition,
            "base": self.base_offset,
            "end": self.end_offset,
            "max_ts": self.max_timestamp,
            "pos": self.position,
            "len": self.length,
            "crc": self.crc,
            "producers": [p.to_json() for p in self.producers],
        }
        if self.txns:
            raw["txns"] = [list(t) for t in self.txns]
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Chunk:
        return cls(
            topic_id=str(raw["topic_id"]),
            topic=str(raw["topic"]),
            partition=int(raw["partition"]),
            base_offset=int(raw["base"]),
            end_offset=int(raw["end"]),
            max_timestamp=int(raw["max_ts"]),
            position=int(raw["pos"]),
            length=int(raw["len"]),
            crc=int(raw["crc"]),
            producers=tuple(ProducerBatch.from_json(p) for p in raw.get("producers", [])),
            txns=tuple((int(p), int(e), int(k), int(o)) for p, e, k, o in raw.get("txns", [])),
        )


@dataclass(frozen=True, slots=True)
class CommitHeader:
    """Who wrote a commit, the metadata ops it applies and the chunks it carries."""

    node_id: int
    epoch: int
    timestamp_ms: int
    ops: tuple[dict[str, Any], ...] = ()
    chunks: tuple[Chunk, ...] = field(default=())
    commit_id: str = ""  # unique per upload attempt
    prev_id: str = ""  # the commit this one must follow (chaining: docs/commit-format.md)

    @property
    def data_length(self) -> int:
        return sum(c.length for c in self.chunks)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "node": self.node_id,
            "epoch": self.epoch,
            "ts": self.timestamp_ms,
            "id": self.commit_id,
            "prev": self.prev_id,
            "ops": list(self.ops),
            "chunks": [c.to_json() for c in self.chunks],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CommitHeader:
        if raw.get("v") != FORMAT_VERSION:
            raise CorruptCommit(f"unknown commit format version={raw.get('v')!r}")
        return cls(
            node_id=int(raw["node"]),
            epoch=int(raw["epoch"]),
            timestamp_ms=int(raw["ts"]),
            commit_id=str(raw.get("id", "")),
            prev_id=str(raw.get("prev", "")),
            ops=tuple(raw.get("ops", [])),
            chunks=tuple(Chunk.from_json(c) for c in raw.get("chunks", [])),
        )


def encode_commit(
    header: CommitHeader, data: Sequence[bytes | bytearray | memoryview]
) -> list[bytes | bytearray | memoryview]:
    """The commit object as parts to upload back to back (joined once by the caller)."""
    body = json.dumps(header.to_json(), separators=(",", ":")).encode()
    return [_PREFIX.pack(MAGIC, len(body), crc32c.crc32c(body)), body, *data]


def header_span(prefix: bytes | memoryview) -> int:
    """How many bytes from the start of the object hold the prefix and the header."""
    if len(prefix) < PREFIX_SIZE:
        raise CorruptCommit(f"commit shorter than its prefix size={len(prefix)}")
    magic, length, _ = _PREFIX.unpack_from(prefix)
    if magic != MAGIC:
        raise CorruptCommit(f"bad commit magic magic={bytes(magic)!r}")
    return PREFIX_SIZE + int(length)


def decode_commit_header(raw: bytes | memoryview) -> tuple[CommitHeader, int]:
    """Parse the header from the first bytes of a commit; returns it and where data starts."""
    span = header_span(raw)
    if len(raw) < span:
        raise CorruptCommit(f"commit header truncated need={span} have={len(raw)}")
    _, _, crc = _PREFIX.unpack_from(raw)
    body = bytes(raw[PREFIX_SIZE:span])
    if crc32c.crc32c(body) != crc:
        raise CorruptCommit("commit header crc mismatch")
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise CorruptCommit(f"commit header is not json error={exc}") from None
    if not isinstance(parsed, dict):
        raise CorruptCommit("commit header is not an object")
    try:
        return CommitHeader.from_json(parsed), span
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptCommit(f"commit header field missing or wrong error={exc!r}") from None

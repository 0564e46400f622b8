"""Log compaction's pure core: which records of a compacted partition's closed segments stay.

Owns: the cleaner's rules, as Kafka's LogCleaner applies them (docs/compaction.md), over
segments given as the raw v2 record batches exactly as stored and served. Two passes, as
Kafka's: `build_offset_map` reads the cleanable range and returns the latest offset of
every key; `clean_segments` rewrites each segment against that map. Pure: bytes and
values in, bytes and values out; no I/O, no clock (`now_ms` is a parameter). The one
side effect is a log line when a segment cannot be read.

Rules, per record of a data batch: a record of an aborted transaction goes; a record
without a key goes; a record whose key has a later offset in the map goes; a tombstone
(null value) that is the latest for its key stays until `now_ms >= its timestamp +
delete_retention_ms`, then goes; everything else stays. A control batch (COMMIT/ABORT
marker) stays while any batch of its transaction stays, and while it is younger than
`delete_retention_ms`; then it goes.

Guarantees:
- offsets are never renumbered: a surviving record keeps its offset, timestamp, key,
  value and headers; a rewritten batch keeps its base offset, last offset delta,
  producer id/epoch, base sequence, leader epoch, codec and timestamp type and its
  transactional/control attributes (so a producer's last sequence survives), and has a
  valid CRC; a batch all of whose records are kept is copied byte for byte;
- the last batch of each producer id in the segments is never dropped: emptied, it is
  kept as an empty batch (records_count 0, no codec), as Kafka's cleaner keeps it, so
  the producer's last sequence and epoch survive;
- a marker is never dropped while a batch of its transaction remains, so a transaction
  index rebuilt from the log never finds a transaction without its end;
- cleaning is idempotent: cleaning the output again, with the same `now_ms`, changes
  nothing;
- fail safe: a segment with a batch that does not decode (or fails its CRC) is returned
  as it was, with `error` set and a warning logged; it is never dropped, and no marker
  after it is dropped (its transactions are unknown).

Preconditions (the caller's, as Kafka's cleaner has them): the segments are closed, in
offset order, start at the partition's log start offset and end below its last stable
offset, so every transaction in them is decided and every batch of a transaction whose
marker is in them is in them too.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from tidelog.protocol._types import BytesLike
from tidelog.protocol.batch import (
    HEADER_BYTES,
    BatchHeader,
    check_crc,
    iter_batches,
    rewrite_crc,
    write_header,
)
from tidelog.protocol.errors import RecordBatchError
from tidelog.protocol.records import Record, build_batch, decode_batch
from tidelog.storage.txn_index import AbortedTxn

__all__ = [
    "CleanResult",
    "CleanedSegment",
    "CleanerStats",
    "build_offset_map",
    "clean_segments",
]

log = logging.getLogger(__name__)

# Attribute bits an empty batch keeps: timestamp type, transactional, control (no codec).
_EMPTY_BATCH_ATTRIBUTES = 0x08 | 0x10 | 0x20
_LOG_OVERHEAD = 12  # base offset and batch length precede what batch_length counts

_Decoded = list[tuple[int, BatchHeader, list[Record]]]


@dataclass(slots=True)
class CleanerStats:
    """What a cleaning removed and kept. Record counts are of data records; markers
    (control batches) are counted on their own."""

    records_kept: int = 0
    records_removed: int = 0
    superseded_removed: int = 0
    tombstones_removed: int = 0
    keyless_removed: int = 0
    aborted_removed: int = 0
    markers_kept: int = 0
    markers_removed: int = 0
    empty_batches_kept: int = 0
    bytes_before: int = 0
    bytes_after: int = 0

    def add(self, other: CleanerStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class CleanedSegment:
    """One input segment's new bytes (b"" when nothing in it remains). `error` is set
    when the segment could not be read and `data` is the input, unchanged."""

    data: bytes
    stats: CleanerStats
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CleanResult:
    segments: tuple[CleanedSegment, ...]  # one per input segment, same order
    stats: CleanerStats  # the totals

    @property
    def changed(self) -> bool:
        """Whether any segment's bytes differ from the input's."""
        return bool(self.stats.records_removed or self.stats.markers_removed)


def build_offset_map(
    segments: Iterable[BytesLike], *, aborted: Sequence[AbortedTxn] = ()
) -> dict[bytes, int]:
    """The latest offset of each key in `segments` (Kafka's offset map). Records of
    aborted transactions and control batches do not count: an aborted write must not
    hide the committed value before it. A segment that cannot be read adds nothing
    (its keys then supersede nothing, so more is kept, never less)."""
    index = _AbortedIndex(aborted)
    latest: dict[bytes, int] = {}
    for number, segment in enumerate(segments):
        try:
            batches = _decode_segment(segment)
        except (RecordBatchError, ValueError) as exc:
            log.warning(
                "offset map skips a segment it cannot read segment=%d error=%s", number, exc
            )
            continue
        for _, header, records in batches:
            if header.is_control or index.holds(header):
                continue
            for record in records:
                if record.key is not None:
                    latest[record.key] = max(record.offset, latest.get(record.key, -1))
    return latest


def clean_segments(
    segments: Sequence[BytesLike],
    offset_map: Mapping[bytes, int],
    *,
    now_ms: int,
    delete_retention_ms: int,
    aborted: Sequence[AbortedTxn] = (),
) -> CleanResult:
    """Rewrite each segment, keeping what the rules keep (module docstring).

    `offset_map` is `build_offset_map` of the cleanable range: it may cover more segments
    than are rewritten; a key it does not hold removes nothing. `aborted` are the
    partition's aborted transactions (`TxnIndex.aborted`)."""
    cleaner = _Cleaner(
        offset_map, now_ms, delete_retention_ms, _AbortedIndex(aborted), _last_batches(segments)
    )
    cleaned = tuple(cleaner.clean(number, segment) for number, segment in enumerate(segments))
    total = CleanerStats()
    for segment in cleaned:
        total.add(segment.stats)
    return CleanResult(cleaned, total)


class _AbortedIndex:
    """Aborted transactions by producer id: [first offset, marker offset] ranges."""

    def __init__(self, aborted: Sequence[AbortedTxn]) -> None:
        ranges: dict[int, list[tuple[int, int]]] = {}
        for txn in aborted:
            ranges.setdefault(txn.producer_id, []).append((txn.first_offset, txn.last_offset))
        self._ranges = {pid: sorted(r) for pid, r in ranges.items()}
        self._by_marker = {(txn.producer_id, txn.last_offset): txn for txn in aborted}

    def holds(self, header: BatchHeader) -> bool:
        """Whether a data batch belongs to an aborted transaction."""
        if not header.is_transactional or header.is_control:
            return False
        ranges = self._ranges.get(header.producer_id)
        if not ranges:
            return False
        i = bisect_right(ranges, (header.base_offset, float("inf"))) - 1
        return i >= 0 and ranges[i][0] <= header.base_offset <= ranges[i][1]

    def first_offset_of(self, header: BatchHeader) -> int | None:
        """The first offset of the aborted transaction an ABORT marker ends, if known."""
        txn = self._by_marker.get((header.producer_id, header.base_offset))
        return None if txn is None else txn.first_offset


class _Cleaner:
    def __init__(
        self,
        offset_map: Mapping[bytes, int],
        now_ms: int,
        delete_retention_ms: int,
        aborted: _AbortedIndex,
        last_batches: tuple[dict[int, int], int],
    ) -> None:
        self._map = offset_map
        self._now = now_ms
        self._retention = delete_retention_ms
        self._aborted = aborted
        self._last_of, self._range_start = last_batches
        # Producer id -> whether a batch of its transaction now being read stays.
        self._open: dict[int, bool] = {}
        # Set once a segment could not be read: its transactions are unknown from then.
        self._unsure = False

    def clean(self, number: int, segment: BytesLike) -> CleanedSegment:
        size = len(segment)
        try:
            batches = _decode_segment(segment)
        except (RecordBatchError, ValueError) as exc:
            self._unsure = True
            error = f"segment left as it was, it cannot be read segment={number} error={exc}"
            log.warning("compaction %s", error)
            return CleanedSegment(
                bytes(segment), CleanerStats(bytes_before=size, bytes_after=size), error
            )
        stats = CleanerStats(bytes_before=size)
        out = bytearray()
        view = memoryview(segment)
        for position, header, records in batches:
            raw = view[position : position + header.size]
            if header.is_control:
                out += self._marker(header, raw, stats)
            else:
                out += self._data(header, raw, records, stats)
        stats.bytes_after = len(out)
        return CleanedSegment(bytes(out), stats)

    def _is_last_of_producer(self, header: BatchHeader) -> bool:
        return (
            header.producer_id >= 0 and self._last_of.get(header.producer_id) == header.base_offset
        )

    def _data(
        self, header: BatchHeader, raw: memoryview, records: list[Record], stats: CleanerStats
    ) -> BytesLike:
        aborted = self._aborted.holds(header)
        kept = [r for r in records if self._keeps(r, aborted, stats)]
        stats.records_kept += len(kept)
        stats.records_removed += len(records) - len(kept)
        if kept and len(kept) == len(records):
            out: BytesLike = raw
        elif kept:
            out = _rebuilt(header, kept)
        elif self._is_last_of_producer(header):
            stats.empty_batches_kept += 1
            out = raw if header.records_count == 0 else _empty_batch(header)
        else:
            out = b""
        if header.is_transactional and header.producer_id >= 0:
            self._open[header.producer_id] = self._open.get(header.producer_id, False) or bool(out)
        return out

    def _keeps(self, record: Record, aborted: bool, stats: CleanerStats) -> bool:
        if aborted:
            stats.aborted_removed += 1
            return False
        if record.key is None:
            stats.keyless_removed += 1
            return False
        if self._map.get(record.key, -1) > record.offset:
            stats.superseded_removed += 1
            return False
        if record.value is None and self._now >= record.timestamp + self._retention:
            stats.tombstones_removed += 1
            return False
        return True

    def _marker(self, header: BatchHeader, raw: memoryview, stats: CleanerStats) -> BytesLike:
        data_stays = self._open.pop(header.producer_id, False)
        first = self._aborted.first_offset_of(header)
        keep = (
            data_stays
            or self._unsure
            or (first is not None and first < self._range_start)
            or self._now < header.max_timestamp + self._retention
            or self._is_last_of_producer(header)
        )
        if keep:
            stats.markers_kept += 1
            return raw
        stats.markers_removed += 1
        return b""


def _decode_segment(segment: BytesLike) -> _Decoded:
    """Every batch of a segment, decoded; raises on the first one that does not read."""
    out: _Decoded = []
    for position, header in iter_batches(segment):
        check_crc(segment, position, header)
        out.append((position, header, decode_batch(segment, position)))
    return out


def _last_batches(segments: Sequence[BytesLike]) -> tuple[dict[int, int], int]:
    """The base offset of each producer id's last batch, and the first offset of all.
    Headers only; a segment that does not parse contributes what parsed before."""
    last: dict[int, int] = {}
    start: int | None = None
    for segment in segments:
        try:
            for _, header in iter_batches(segment):
                if start is None:
                    start = header.base_offset
                if header.producer_id >= 0:
                    last[header.producer_id] = header.base_offset
        except RecordBatchError:
            continue
    return last, -1 if start is None else start


def _rebuilt(header: BatchHeader, kept: list[Record]) -> bytes:
    """The surviving records as a batch that still spans the original's offsets."""
    batch = bytearray(
        build_batch(
            kept,
            base_offset=header.base_offset,
            compression=header.compression,
            producer_id=header.producer_id,
            producer_epoch=header.producer_epoch,
            base_sequence=header.base_sequence,
            partition_leader_epoch=header.partition_leader_epoch,
            is_transactional=header.is_transactional,
            timestamp_type=header.timestamp_type,
        )
    )
    new = next(iter_batches(batch))[1]
    # The original last offset keeps the producer's last sequence (base sequence +
    # last offset delta) as it was, as Kafka's cleaner keeps it.
    write_header(batch, 0, new._replace(last_offset_delta=header.last_offset_delta))
    rewrite_crc(batch, 0)
    return bytes(batch)


def _empty_batch(header: BatchHeader) -> bytes:
    """A batch with no records that keeps the original's offsets and producer fields."""
    batch = bytearray(HEADER_BYTES)
    empty = header._replace(
        batch_length=HEADER_BYTES - _LOG_OVERHEAD,
        crc=0,
        attributes=header.attributes & _EMPTY_BATCH_ATTRIBUTES,
        base_timestamp=header.max_timestamp,
        records_count=0,
    )
    write_header(batch, 0, empty)
    rewrite_crc(batch, 0)
    return bytes(batch)

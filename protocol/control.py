"""Control batches: the COMMIT and ABORT markers a transaction leaves in a partition.

Owns: the byte layout of a control batch, as Kafka writes it: a v2 batch with the
transactional and control attributes set (0x30), the transaction's producer id and
epoch, base sequence -1, and one record whose key is (int16 version 0, int16 type:
0 abort, 1 commit) and whose value is (int16 version 0, int32 coordinator epoch).
Pure: bytes in, values out.

Guarantees: `control_type` answers only for a well-formed control batch (None for a
data batch, a short or foreign one), so a reader never mistakes data for a marker.
"""

from __future__ import annotations

import struct

from tidelog.protocol.batch import BatchHeader
from tidelog.protocol.records import Record, build_batch, decode_batch

ABORT, COMMIT = 0, 1
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")

__all__ = ["ABORT", "COMMIT", "control_batch", "control_type"]


def control_batch(
    *, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, timestamp: int
) -> bytes:
    """One control batch (base offset 0: the log assigns the real one)."""
    record = Record(
        offset=0,
        timestamp=timestamp,
        key=_KEY.pack(0, COMMIT if commit else ABORT),
        value=_VALUE.pack(0, coordinator_epoch),
    )
    return build_batch(
        [record],
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=-1,
        is_transactional=True,
        is_control=True,
    )


def control_type(batch: bytes | bytearray | memoryview, header: BatchHeader) -> int | None:
    """ABORT or COMMIT for a control batch, None for anything else."""
    if not header.is_control:
        return None
    try:
        records = decode_batch(batch)
    except Exception:  # a control batch we cannot read is no marker of ours
        return None
    if len(records) != 1 or records[0].key is None or len(records[0].key) != _KEY.size:
        return None
    version, kind = _KEY.unpack(records[0].key)
    if version != 0 or kind not in (ABORT, COMMIT):
        return None
    return int(kind)

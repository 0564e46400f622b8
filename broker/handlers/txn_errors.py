"""Error codes of the transaction APIs as each request version knows them.

PRODUCER_FENCED (90) is newer than the transaction APIs: Kafka answers it only to
versions that know it (InitProducerId v4+, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn
and TxnOffsetCommit v2+) and INVALID_PRODUCER_EPOCH (47) to older ones, which
clients of those versions treat as fencing too.
"""

from __future__ import annotations

from tidelog.protocol.errors import ErrorCode


def for_version(code: ErrorCode, version: int, first_fenced_version: int = 2) -> ErrorCode:
    if code == ErrorCode.producer_fenced and version < first_fenced_version:
        return ErrorCode.invalid_producer_epoch
    return code

"""The data of one transactional id, and its JSON form in the coordinator's stream.

Owns: `TxnStatus` (Kafka's state names, as ListTransactions and DescribeTransactions
report them), `TxnMeta` (one transactional id's producer identity, timeout and open
transaction), `MAX_EPOCH`/`EXHAUSTED_EPOCH`, and `TxnMeta.to_json`/`from_json`.

Guarantees:
* Plain immutable data; nothing here reads a clock or does I/O.
* `to_json` gives a dict of str, int, lists and null only, with short keys that stay
  stable (they are stored in the bucket): partitions as `[[topic, partition], ...]`
  sorted, groups sorted, so equal metas give equal JSON. `from_json(to_json(m)) == m`;
  `from_json` ignores keys it does not know and raises `ValueError` on a missing or
  mistyped one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

NO_PRODUCER_ID = -1
NO_EPOCH = -1
MAX_EPOCH = 32767  # int16: reached only by a fencing bump, never handed to a producer
EXHAUSTED_EPOCH = MAX_EPOCH - 1  # a bump from here on takes a new producer id


class TxnStatus(str, Enum):  # noqa: UP042  (the spec's form; values are Kafka's names)
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    DEAD = "Dead"

    @property
    def is_prepare(self) -> bool:
        return self in (TxnStatus.PREPARE_COMMIT, TxnStatus.PREPARE_ABORT)

    @property
    def is_complete(self) -> bool:
        return self in (TxnStatus.COMPLETE_COMMIT, TxnStatus.COMPLETE_ABORT)


@dataclass(frozen=True, slots=True)
class TxnMeta:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    last_producer_id: int  # -1 unless the last bump changed the id (epoch exhaustion)
    last_producer_epoch: int  # the epoch before the last bump (-1 none): KIP-360 retries
    timeout_ms: int
    status: TxnStatus
    partitions: frozenset[tuple[str, int]]
    groups: frozenset[str]  # consumer groups of AddOffsetsToTxn
    txn_start_ms: int  # -1 when not Ongoing
    last_update_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.transactional_id,
            "pid": self.producer_id,
            "epoch": self.producer_epoch,
            "last_pid": self.last_producer_id,
            "last_epoch": self.last_producer_epoch,
            "timeout_ms": self.timeout_ms,
            "status": self.status.value,
            "partitions": [[topic, partition] for topic, partition in sorted(self.partitions)],
            "groups": sorted(self.groups),
            "start_ms": self.txn_start_ms,
            "update_ms": self.last_update_ms,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TxnMeta:
        try:
            partitions = frozenset(_partition(item) for item in _list(raw["partitions"]))
            groups = frozenset(_str(group) for group in _list(raw["groups"]))
            return cls(
                transactional_id=_str(raw["id"]),
                producer_id=_int(raw["pid"]),
                producer_epoch=_int(raw["epoch"]),
                last_producer_id=_int(raw["last_pid"]),
                last_producer_epoch=_int(raw["last_epoch"]),
                timeout_ms=_int(raw["timeout_ms"]),
                status=TxnStatus(_str(raw["status"])),
                partitions=partitions,
                groups=groups,
                txn_start_ms=_int(raw["start_ms"]),
                last_update_ms=_int(raw["update_ms"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a transaction's metadata: {raw!r}") from exc


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, got {value!r}")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a str, got {value!r}")
    return value


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value


def _partition(value: object) -> tuple[str, int]:
    topic, partition = _list(value)  # a ValueError if it is not a pair
    return _str(topic), _int(partition)

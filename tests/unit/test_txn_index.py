"""The partition side of transactions: control batches, the open/aborted index and the
last stable offset, through the produce path, WAL replay, upload and adoption."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tidelog.protocol.batch import iter_batches
from tidelog.protocol.control import ABORT, COMMIT, control_batch, control_type
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch, decode_records
from tidelog.storage.commit_format import Chunk
from tidelog.storage.errors import StoreError
from tidelog.storage.log_store import LogStore, StoreConfig
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.partition_log import Batch, PartitionLog
from tidelog.storage.stream_state import PartitionState
from tidelog.storage.txn_index import ABORT as ABORT_EVENT
from tidelog.storage.txn_index import BEGIN, AbortedTxn, TxnIndex
from tidelog.storage.txn_index import COMMIT as COMMIT_EVENT

NOW = 1_700_000_000_000
PID = 4000


def txn_batch(values: list[bytes], *, seq: int, epoch: int = 0, pid: int = PID) -> bytes:
    recs = [Record(i, NOW + i, None, v) for i, v in enumerate(values)]
    return build_batch(
        recs, producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=True
    )


def make(tmp: Path, mem: MemoryObjectStore, **kw: object) -> LogStore:
    kw.setdefault("flush_interval_ms", 3_600_000)
    config = StoreConfig(data_dir=tmp, **kw)  # type: ignore[arg-type]
    return LogStore(config, mem, lambda: NOW)


async def marker(store: LogStore, partition: int, *, commit: bool, epoch: int = 0) -> int:
    pending = store.produce.append_marker(
        "t",
        partition,
        producer_id=PID,
        producer_epoch=epoch,
        commit=commit,
        coordinator_epoch=3,
        timestamp=NOW,
    )
    await pending.durable
    return pending.result.base_offset


async def committed_values(store: LogStore, partition: int = 0) -> list[bytes | None]:
    res = await store.read("t", partition, 0, 1 << 20, committed=True)
    aborted = res.aborted or ()
    out: list[bytes | None] = []
    raw = b"".join(res.parts)
    for position, header in iter_batches(raw):
        if header.is_control:
            continue  # what a client does: markers are never handed to the application
        for rec in decode_records(raw[position : position + header.size]):
            if not any(a.first_offset <= rec.offset <= a.last_offset for a in aborted):
                out.append(rec.value)
    return out


def test_control_batch_round_trips_and_data_is_never_a_marker() -> None:
    for commit, kind in ((True, COMMIT), (False, ABORT)):
        raw = control_batch(
            producer_id=9, producer_epoch=2, commit=commit, coordinator_epoch=5, timestamp=NOW
        )
        header = next(iter_batches(raw))[1]
        assert header.is_control and header.is_transactional and header.base_sequence == -1
        assert (header.producer_id, header.producer_epoch) == (9, 2)
        assert control_type(raw, header) == kind
    data = txn_batch([b"x"], seq=0)
    assert control_type(data, next(iter_batches(data))[1]) is None


def test_index_applies_each_event_once_in_offset_order() -> None:
    index = TxnIndex()
    assert index.apply((1, 0, BEGIN, 10))
    assert not index.apply((1, 0, BEGIN, 10))  # folding our own commit again
    assert index.apply((2, 0, BEGIN, 12))
    assert index.stable_offset(100) == 10
    assert index.apply((1, 0, 2, 15))  # abort
    assert index.stable_offset(100) == 12
    assert index.apply((2, 0, 1, 16))  # commit
    assert index.stable_offset(100) == 100 and index.open == {}
    assert index.aborted == [AbortedTxn(1, 10, 15)]
    assert index.aborted_between(0, 11) == [AbortedTxn(1, 10, 15)]
    assert index.aborted_between(16, 50) == []  # ended before the range
    assert index.aborted_between(0, 10) == []  # begins at the range's end
    saved = index.saved()
    index.apply((3, 0, BEGIN, 20))
    index.restore(saved)
    assert index.open == {} and index.last_event == 16
    assert TxnIndex.from_json(index.to_json()) == index


def test_a_transactional_batch_opens_a_transaction_only_when_verified(tmp_path: Path) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        await store.create_topic("t", 1)
        with pytest.raises(StoreError) as refused:
            store.append_nowait("t", 0, txn_batch([b"late"], seq=0))
        assert refused.value.code == ErrorCode.invalid_txn_state
        assert store.partition("t", 0).next_offset == 0  # nothing stored
        await store.append_nowait("t", 0, txn_batch([b"a"], seq=0), txn_verified=True).durable
        # The transaction is open here now: its next batch needs no verification.
        await store.append_nowait("t", 0, txn_batch([b"b"], seq=1)).durable
        await store.stop()

    asyncio.run(main())


def test_lso_holds_read_committed_until_the_marker_and_aborts_are_listed(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        await store.create_topic("t", 1)
        part = store.partition("t", 0)
        await store.append_nowait(
            "t", 0, txn_batch([b"a1", b"a2"], seq=0), txn_verified=True
        ).durable
        assert (part.high_watermark, part.last_stable_offset) == (2, 0)
        assert await committed_values(store) == []
        assert await marker(store, 0, commit=False) == 2
        assert part.last_stable_offset == part.high_watermark == 3
        await store.append_nowait("t", 0, txn_batch([b"c1"], seq=2), txn_verified=True).durable
        await marker(store, 0, commit=True)
        res = await store.read("t", 0, 0, 1 << 20, committed=True)
        assert res.aborted == (AbortedTxn(PID, 0, 2),)
        assert res.last_stable_offset == 5
        assert await committed_values(store) == [b"c1"]
        uncommitted = await store.read("t", 0, 0, 1 << 20)
        assert uncommitted.aborted is None  # read_uncommitted: sent as null
        await store.stop()

    asyncio.run(main())


def test_a_marker_with_a_newer_epoch_fences_the_older_one(tmp_path: Path) -> None:
    async def main() -> None:
        store = make(tmp_path, MemoryObjectStore())
        await store.start()
        await store.create_topic("t", 1)
        await store.append_nowait("t", 0, txn_batch([b"a"], seq=0), txn_verified=True).durable
        await marker(store, 0, commit=False, epoch=1)  # a timeout abort bumps the epoch
        with pytest.raises(StoreError) as fenced:
            store.append_nowait("t", 0, txn_batch([b"zombie"], seq=1), txn_verified=True)
        assert fenced.value.code == ErrorCode.invalid_producer_epoch
        # The new epoch starts its sequences at zero.
        await store.append_nowait(
            "t", 0, txn_batch([b"new"], seq=0, epoch=1), txn_verified=True
        ).durable
        await store.stop()

    asyncio.run(main())


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_open_and_aborted_transactions_survive_a_crash_and_a_new_owner(
    tmp_path: Path, durability: str
) -> None:
    mem = MemoryObjectStore()
    interval = 20 if durability == "object" else 3_600_000  # object mode acks after upload

    async def crash() -> None:
        store = make(tmp_path, mem, durability=durability, flush_interval_ms=interval)
        await store.start()
        await store.create_topic("t", 1)
        await store.append_nowait("t", 0, txn_batch([b"x"], seq=0), txn_verified=True).durable
        await marker(store, 0, commit=False)
        await store.append_nowait("t", 0, txn_batch([b"y"], seq=1), txn_verified=True).durable
        # Crash: nothing flushed beyond what object mode already uploaded.
        if store.wal is not None:
            await store.wal.close()
        await store.flusher.stop()
        await store.membership.stop()
        store.release_data_dir()

    async def recover() -> None:
        store = make(tmp_path, mem, durability=durability, node_id=2)
        await store.start()
        part = store.partition("t", 0)
        assert part.high_watermark == 3
        assert part.last_stable_offset == 2  # the second transaction is still open
        assert part.state.txns.aborted == [AbortedTxn(PID, 0, 1)]
        assert await committed_values(store) == []
        await store.flush_once()
        assert PartitionState.from_json(part.state.to_json()).txns == part.state.txns
        await store.stop()

    asyncio.run(crash())
    asyncio.run(recover())


def test_chunk_events_round_trip_through_the_commit_header() -> None:
    chunk = Chunk("id", "t", 0, 0, 3, NOW, 0, 10, 1, txns=((PID, 0, BEGIN, 0), (PID, 0, 2, 2)))
    assert Chunk.from_json(chunk.to_json()) == chunk
    assert "txns" not in Chunk("id", "t", 0, 0, 3, NOW, 0, 10, 1).to_json()


def test_lso_passes_a_transaction_only_once_its_marker_is_below_the_high_watermark() -> None:
    # The marker is in the log but not yet durable (its WAL write or upload is pending):
    # it may still be given back or lost with the broker, so read_committed must not
    # read past the transaction's first offset yet.
    log = PartitionLog(PartitionState("id", "t", 0))
    log.add(Batch(0, 2, NOW, b"data", None, (PID, 0, BEGIN, 0)))
    log.add(Batch(2, 3, NOW, b"plain", None))
    log.advance_high_watermark(3)
    assert log.last_stable_offset == 0
    log.add(Batch(3, 4, NOW, b"marker", None, (PID, 0, ABORT_EVENT, 3)))
    log.add(Batch(4, 5, NOW, b"data", None, (PID + 1, 0, BEGIN, 4)))
    assert log.state.txns.open == {PID + 1: 4}  # applied at once (fencing needs it)
    assert log.last_stable_offset == 0  # but not yet decided for readers
    log.advance_high_watermark(4)  # the marker is durable now
    assert log.last_stable_offset == 4
    log.advance_high_watermark(5)
    assert log.last_stable_offset == 4  # the second transaction is open
    log.add(Batch(5, 6, NOW, b"marker", None, (PID + 1, 0, COMMIT_EVENT, 5)))
    log.discard_from(5)  # its write failed: given back, still open
    assert log.last_stable_offset == 4 and log.state.txns.open == {PID + 1: 4}

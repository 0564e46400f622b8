"""The WAL: group commit, recovery, torn tails and deletion after upload."""

import asyncio
import itertools
import uuid
from functools import partial
from pathlib import Path

import pytest

from tests.unit.full_disk import FullDisk
from tidelog.storage.wal import KIND_BATCH, MAGIC, WalError, WalWriter, encode_payload, read_wal

TOPIC_ID = str(uuid.uuid4())


async def _write(directory: Path, bodies: list[bytes], **kw: int) -> WalWriter:
    wal = WalWriter(directory, **kw)  # type: ignore[arg-type]
    await wal.open({})
    head = encode_payload(KIND_BATCH, TOPIC_ID, "payments", 3)
    for i, b in enumerate(bodies):  # one sync each, so a small segment size rolls files
        await wal.append(head, b, (("payments", 3), i + 1))
    return wal


def test_appended_records_are_read_back_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        wal = await _write(tmp_path, [b"a" * 10, b"b" * 20, b"c"])
        await wal.close()

    asyncio.run(main())
    entries = [e for _, e in read_wal(tmp_path)]
    assert [e.body for e in entries] == [b"a" * 10, b"b" * 20, b"c"]
    assert {(e.topic, e.partition, e.topic_id, e.kind) for e in entries} == {
        ("payments", 3, TOPIC_ID, KIND_BATCH)
    }


def test_concurrent_appends_share_syncs(tmp_path: Path) -> None:
    syncs = 0

    async def main() -> None:
        nonlocal syncs
        wal = WalWriter(tmp_path)
        await wal.open({})
        original = wal._write_sync

        def counting(*args: object) -> None:
            nonlocal syncs
            syncs += 1
            original(*args)  # type: ignore[arg-type]

        wal._write_sync = counting  # type: ignore[method-assign,assignment]
        head = encode_payload(KIND_BATCH, TOPIC_ID, "t", 0)
        await asyncio.gather(*(wal.append(head, b"x", (("t", 0), i)) for i in range(100)))
        await wal.close()

    asyncio.run(main())
    assert 1 <= syncs < 100
    assert len(read_wal(tmp_path)) == 100


@pytest.mark.parametrize("cut", [1, 4, 7, 9, 15])
def test_torn_tail_is_cut_and_earlier_records_survive(tmp_path: Path, cut: int) -> None:
    async def main() -> None:
        await (await _write(tmp_path, [b"first-record", b"second-record"])).close()

    asyncio.run(main())
    (path,) = tmp_path.glob("*.wal")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    entries = [e.body for _, e in read_wal(tmp_path)]
    assert entries == [b"first-record"]
    # The cut is made durable: a second recovery reads the same and the file is clean.
    assert [e.body for _, e in read_wal(tmp_path)] == [b"first-record"]
    assert path.stat().st_size < len(data) - cut or cut > len(b"second-record") + 8


def test_flipped_bit_in_last_record_drops_only_that_record(tmp_path: Path) -> None:
    async def main() -> None:
        await (await _write(tmp_path, [b"keep-me", b"corrupt-me"])).close()

    asyncio.run(main())
    (path,) = tmp_path.glob("*.wal")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    assert [e.body for _, e in read_wal(tmp_path)] == [b"keep-me"]


def test_corruption_inside_a_sealed_file_refuses_recovery(tmp_path: Path) -> None:
    async def main() -> None:
        await (await _write(tmp_path, [b"x" * 100, b"y" * 100], segment_bytes=150)).close()

    asyncio.run(main())
    files = sorted(tmp_path.glob("*.wal"))
    assert len(files) == 2
    data = bytearray(files[0].read_bytes())
    data[len(MAGIC) + 12] ^= 1
    files[0].write_bytes(bytes(data))
    with pytest.raises(WalError):
        read_wal(tmp_path)


def test_files_are_deleted_only_once_committed(tmp_path: Path) -> None:
    async def main() -> None:
        wal = await _write(tmp_path, [b"x" * 100, b"y" * 100, b"z" * 100], segment_bytes=150)
        assert len(list(tmp_path.glob("*.wal"))) == 3
        assert await wal.release(lambda key: 1) == 1  # only the first file is committed
        assert await wal.release(lambda key: 3) == 2
        await wal.close()

    asyncio.run(main())
    assert read_wal(tmp_path) == []


def test_synced_whole_pages_leave_the_page_cache_but_the_last_partial_page_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sync advises DONTNEED for the whole pages written since the last advice;
    never the partly filled last page (the next append would read it back from disk)."""
    import mmap
    import os

    advised: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, adv: advised.append((off, n)))

    async def main() -> int:
        page = mmap.PAGESIZE
        wal = await _write(tmp_path, [b"a" * 100, b"b" * (page * 3), b"c" * 10, b"d" * page])
        await wal.close()
        return page

    page = asyncio.run(main())
    size = (tmp_path / "00000000000000000000.wal").stat().st_size
    assert advised, "no page was ever handed back"
    assert all(off % page == 0 and n % page == 0 and n > 0 for off, n in advised)
    assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(advised))  # no gap, no overlap
    assert advised[0][0] == 0
    assert advised[-1][0] + advised[-1][1] == size - size % page
    assert [e.body[:1] for _, e in read_wal(tmp_path)] == [b"a", b"b", b"c", b"d"]


def test_a_write_that_hits_a_full_disk_is_cut_from_the_file_and_fails_its_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)

    async def main() -> None:
        wal = await _write(tmp_path, [b"acked-before"])
        (path,) = tmp_path.glob("*.wal")
        size = path.stat().st_size
        head = encode_payload(KIND_BATCH, TOPIC_ID, "payments", 3)
        disk.full = True
        with pytest.raises(WalError):
            await wal.append(head, b"x" * 5000, (("payments", 3), 2))
        # Nothing of the failed record stays behind: replay can never make it visible.
        assert path.stat().st_size == size
        # While the disk is full an append is refused at once, not queued behind a wait.
        with pytest.raises(WalError):
            wal.append(head, b"refused", (("payments", 3), 2))
        await wal.close()

    asyncio.run(main())
    assert [e.body for _, e in read_wal(tmp_path)] == [b"acked-before"]


def test_appends_resume_by_themselves_once_the_disk_has_space_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)

    async def main() -> None:
        wal = WalWriter(tmp_path, probe_interval_s=0.0)
        await wal.open({})
        head = encode_payload(KIND_BATCH, TOPIC_ID, "payments", 3)
        await wal.append(head, b"before", (("payments", 3), 1))
        disk.full = True
        with pytest.raises(WalError):
            await wal.append(head, b"failed", (("payments", 3), 2))
        assert not wal.writable
        disk.full = False  # space freed: the probe finds out without any append
        await wal.wait_writable()
        await wal.append(head, b"after", (("payments", 3), 2))
        await wal.close()

    asyncio.run(main())
    assert [e.body for _, e in read_wal(tmp_path)] == [b"before", b"after"]


def test_a_failed_write_undoes_its_records_newest_first_before_failing_their_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store gives the records' offsets back in `undo`, before any append can run."""
    disk = FullDisk(monkeypatch)
    undone: list[tuple[int, bool]] = []

    async def main() -> None:
        wal = WalWriter(tmp_path)
        await wal.open({})
        head = encode_payload(KIND_BATCH, TOPIC_ID, "t", 0)
        disk.full = True
        futures: list[asyncio.Future[None]] = []

        def undo(i: int) -> None:
            undone.append((i, futures[i].done()))

        for i in range(3):
            futures.append(wal.append(head, b"x" * 100, (("t", 0), i + 1), partial(undo, i)))
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, WalError) for r in results)
        await wal.close()

    asyncio.run(main())
    assert undone == [(2, False), (1, False), (0, False)]


def test_a_failed_write_that_cannot_be_cut_yet_is_answered_only_once_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until its bytes are out of the file its outcome is unknown (a crash would replay
    them), so it gets no answer; once the probe cuts them, it fails like any other."""
    disk = FullDisk(monkeypatch)

    async def main() -> None:
        wal = WalWriter(tmp_path, probe_interval_s=0.0)
        await wal.open({})
        (path,) = tmp_path.glob("*.wal")
        size = path.stat().st_size
        head = encode_payload(KIND_BATCH, TOPIC_ID, "t", 0)
        disk.full = disk.broken_truncate = True
        fut = wal.append(head, b"x" * 100, (("t", 0), 1))
        while wal.writable:  # until the failed write is noticed
            await asyncio.sleep(0)
        for _ in range(20):  # the probe keeps trying (and failing) meanwhile
            await asyncio.sleep(0)
        assert not fut.done()
        assert path.stat().st_size > size  # the half-written record is still there
        disk.full = False
        with pytest.raises(WalError):
            await fut
        assert path.stat().st_size == size
        await wal.wait_writable()
        await wal.close()

    asyncio.run(main())
    assert read_wal(tmp_path) == []

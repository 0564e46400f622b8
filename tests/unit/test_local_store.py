"""LocalObjectStore against the ObjectStore contract, plus what only a directory can get wrong.

Also here, as the local store is the default it returns: `open_object_store` URL parsing.

No sockets and no sleeps: every store lives in tmp_path. The races run real threads and
real processes (spawned, so they share nothing but the directory) released together by a
barrier, many rounds each, and check that exactly one writer wins each key and that no
compare-and-swap increment is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tidelog.storage.local_store import LocalObjectStore
from tidelog.storage.object_store import ObjectInfo, ObjectNotFound, ObjectStore, PreconditionFailed
from tidelog.storage.s3_store import S3ObjectStore
from tidelog.storage.store_url import open_object_store

T = TypeVar("T")

_ROUNDS = 25
_WRITERS = 4
_BARRIER_TIMEOUT_S = 60


def run(check: Callable[[], Awaitable[T]]) -> T:
    async def awaited() -> T:
        return await check()

    return asyncio.run(awaited())


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- single writer ---------------------------------------------------------------------


def test_put_writes_a_file_at_the_key_and_returns_its_etag(store: LocalObjectStore) -> None:
    etag = run(lambda: store.put("log/00000000000000000001.tlc", b"commit"))
    assert run(lambda: store.head("log/00000000000000000001.tlc")) == ObjectInfo(
        "log/00000000000000000001.tlc", 6, etag
    )
    assert (store.root / "log/00000000000000000001.tlc").read_bytes() == b"commit"
    assert files_under(store.root) == [".tidelog.lock", "log/00000000000000000001.tlc"]


def test_url_is_the_absolute_file_uri(tmp_path: Path) -> None:
    assert LocalObjectStore(tmp_path / "x").url == (tmp_path / "x").absolute().as_uri()


def test_put_if_absent_twice_raises_and_keeps_the_first(store: LocalObjectStore) -> None:
    async def check() -> None:
        await store.put_if_absent("claim", b"first")
        with pytest.raises(PreconditionFailed, match="key=claim"):
            await store.put_if_absent("claim", b"second")

    run(check)
    assert (store.root / "claim").read_bytes() == b"first"
    assert files_under(store.root) == [".tidelog.lock", "claim"]  # no temp file left behind


def test_put_if_match_with_current_etag_replaces(store: LocalObjectStore) -> None:
    async def check() -> tuple[str, bytes, ObjectInfo | None]:
        etag = await store.put("doc", b"v1")
        new = await store.put_if_match("doc", b"v2", etag)
        return new, await store.get("doc"), await store.head("doc")

    new, content, info = run(check)
    assert (content, info) == (b"v2", ObjectInfo("doc", 2, new))


def test_put_if_match_with_stale_etag_fails_and_keeps_content(store: LocalObjectStore) -> None:
    async def check() -> None:
        stale = await store.put("doc", b"v1")
        await store.put("doc", b"v2")
        with pytest.raises(PreconditionFailed, match="expected_etag="):
            await store.put_if_match("doc", b"v3", stale)

    run(check)
    assert (store.root / "doc").read_bytes() == b"v2"
    assert files_under(store.root) == [".tidelog.lock", "doc"]


def test_put_if_match_on_missing_key_fails_and_creates_nothing(store: LocalObjectStore) -> None:
    async def check() -> None:
        with pytest.raises(PreconditionFailed):
            await store.put_if_match("ghost", b"x", md5(b""))

    run(check)
    assert not (store.root / "ghost").exists()


def test_rewriting_the_same_content_still_changes_the_etag(store: LocalObjectStore) -> None:
    async def check() -> None:
        first = await store.put("doc", b"same")
        second = await store.put("doc", b"same")
        assert first != second
        with pytest.raises(PreconditionFailed):
            await store.put_if_match("doc", b"other", first)

    run(check)


def test_etag_comes_from_the_file_so_other_instances_agree(tmp_path: Path) -> None:
    writer, reader = LocalObjectStore(tmp_path), LocalObjectStore(tmp_path)

    async def check() -> None:
        etag = await writer.put("shared", b"from writer")
        assert await reader.head("shared") == ObjectInfo("shared", 11, etag)
        await reader.put_if_match("shared", b"from reader", etag)
        assert await writer.get("shared") == b"from reader"

    run(check)


def test_missing_key_errors(store: LocalObjectStore) -> None:
    async def check() -> None:
        with pytest.raises(ObjectNotFound, match="key=nope"):
            await store.get("nope")
        with pytest.raises(ObjectNotFound):
            await store.get_range("nope", 0, 1)
        assert await store.head("nope") is None
        await store.delete("nope")

    run(check)


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [(0, 3, b"abc"), (2, 3, b"cde"), (4, 10, b"ef"), (6, 1, b""), (100, 1, b""), (1, 0, b"")],
)
def test_get_range_reads_only_the_range(
    store: LocalObjectStore, start: int, length: int, expected: bytes
) -> None:
    async def check() -> bytes:
        await store.put("r", b"abcdef")
        return await store.get_range("r", start, length)

    assert run(check) == expected


def test_list_is_sorted_honours_start_after_and_skips_internal_files(
    store: LocalObjectStore,
) -> None:
    keys = ["b/2", "a/10", "a/02", "a/01", "a/sub/z", "ab", "c"]

    async def check() -> tuple[list[str], list[str], list[str]]:
        for key in reversed(keys):
            await store.put(key, key.encode())
        (store.root / "a" / ".tidelog-tmp-leftover").write_bytes(b"half written")
        everything = [i.key for i in await store.list("")]
        under_a = [i.key for i in await store.list("a/", start_after="a/02")]
        starting_a = [i.key for i in await store.list("a")]
        return everything, under_a, starting_a

    everything, under_a, starting_a = run(check)
    assert everything == ["a/01", "a/02", "a/10", "a/sub/z", "ab", "b/2", "c"]
    assert under_a == ["a/10", "a/sub/z"]
    assert starting_a == ["a/01", "a/02", "a/10", "a/sub/z", "ab"]


def test_list_reports_size_and_etag_like_head(store: LocalObjectStore) -> None:
    async def check() -> tuple[list[ObjectInfo], str]:
        etag = await store.put("p/x", b"12345")
        return await store.list("p/"), etag

    listed, etag = run(check)
    assert listed == [ObjectInfo("p/x", 5, etag)]


def test_delete_removes_the_file(store: LocalObjectStore) -> None:
    async def check() -> None:
        await store.put("gone", b"x")
        await store.delete("gone")
        assert await store.head("gone") is None

    run(check)
    assert not (store.root / "gone").exists()


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "../escape", "a/../../b", "a//b", "a/", ".", "a/./b", ".tidelog.lock",
     "x/.tidelog-tmp-1", "nul\0byte"],
)  # fmt: skip
def test_bad_keys_are_rejected(store: LocalObjectStore, key: str) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get(key),
        lambda: store.head(key),
        lambda: store.put(key, b"x"),
        lambda: store.put_if_absent(key, b"x"),
        lambda: store.delete(key),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="invalid object key"):
            run(call)
    assert files_under(store.root) == []


def test_bad_list_prefix_is_rejected(store: LocalObjectStore) -> None:
    with pytest.raises(ValueError, match="prefix"):
        run(lambda: store.list("/etc"))
    with pytest.raises(ValueError, match="invalid object key"):
        run(lambda: store.list("../"))


def test_a_key_cannot_also_be_a_directory_of_keys(store: LocalObjectStore) -> None:
    async def check() -> None:
        await store.put("a/b", b"x")
        with pytest.raises(ValueError, match="directory"):
            await store.put("a", b"y")
        with pytest.raises(ValueError, match="parent"):
            await store.put("a/b/c", b"z")
        with pytest.raises(ObjectNotFound):
            await store.get("a")
        assert await store.head("a") is None

    run(check)


# -- races: threads --------------------------------------------------------------------


def test_put_if_absent_from_many_threads_has_one_winner_per_key(store: LocalObjectStore) -> None:
    barrier = threading.Barrier(_WRITERS, timeout=_BARRIER_TIMEOUT_S)

    def writer(name: str) -> list[str]:
        won = []
        for round_ in range(_ROUNDS):
            barrier.wait()
            if _try_put_if_absent(store, f"race/{round_:03d}", name):
                won.append(f"race/{round_:03d}")
        return won

    with ThreadPoolExecutor(_WRITERS) as pool:
        wins = dict(zip(_names(), pool.map(writer, _names()), strict=True))
    _assert_one_winner_per_key(store.root, wins)


def test_put_if_match_from_many_threads_loses_no_increment(store: LocalObjectStore) -> None:
    run(lambda: store.put("counter", b"0"))
    with ThreadPoolExecutor(_WRITERS) as pool:
        list(pool.map(lambda _: _increment(store, _ROUNDS), range(_WRITERS)))
    assert (store.root / "counter").read_bytes() == str(_WRITERS * _ROUNDS).encode()


# -- races: processes ------------------------------------------------------------------


def test_put_if_absent_from_many_processes_has_one_winner_per_key(tmp_path: Path) -> None:
    root, results = tmp_path / "objects", tmp_path / "results"
    results.mkdir()
    _run_processes(_absent_worker, lambda name: (str(root), name, str(results / name)))
    wins = {name: json.loads((results / name).read_text()) for name in _names()}
    _assert_one_winner_per_key(root, wins)


def test_put_if_match_from_many_processes_loses_no_increment(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    run(lambda: store.put("counter", b"0"))
    _run_processes(_increment_worker, lambda name: (str(root),))
    assert (root / "counter").read_bytes() == str(_WRITERS * _ROUNDS).encode()


def _run_processes(target: Callable[..., None], args: Callable[[str], tuple[Any, ...]]) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(_WRITERS, timeout=_BARRIER_TIMEOUT_S)
    procs = [ctx.Process(target=target, args=(barrier, *args(name))) for name in _names()]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    exit_codes = [proc.exitcode for proc in procs]
    for proc in procs:
        if proc.exitcode is None:
            proc.kill()
            proc.join()
        proc.close()
    assert exit_codes == [0] * _WRITERS


def _absent_worker(barrier: Barrier, root: str, name: str, out: str) -> None:
    store = LocalObjectStore(Path(root))
    won = []
    for round_ in range(_ROUNDS):
        barrier.wait()
        if _try_put_if_absent(store, f"race/{round_:03d}", name):
            won.append(f"race/{round_:03d}")
    Path(out).write_text(json.dumps(won))


def _increment_worker(barrier: Barrier, root: str) -> None:
    store = LocalObjectStore(Path(root))
    barrier.wait()
    _increment(store, _ROUNDS)


# -- race helpers ----------------------------------------------------------------------


def _names() -> list[str]:
    return [f"writer-{i}" for i in range(_WRITERS)]


def _try_put_if_absent(store: LocalObjectStore, key: str, name: str) -> bool:
    try:
        run(lambda: store.put_if_absent(key, name.encode()))
    except PreconditionFailed:
        return False
    return True


def _increment(store: LocalObjectStore, times: int) -> None:
    async def increment() -> None:
        for _ in range(times):
            while True:
                info = await store.head("counter")
                assert info is not None
                value = int(await store.get("counter"))
                try:
                    await store.put_if_match("counter", str(value + 1).encode(), info.etag)
                    break
                except PreconditionFailed:
                    continue

    run(increment)


def _assert_one_winner_per_key(root: Path, wins: dict[str, list[str]]) -> None:
    keys = [f"race/{round_:03d}" for round_ in range(_ROUNDS)]
    winners = {key: [name for name, won in wins.items() if key in won] for key in keys}
    assert {key: len(names) for key, names in winners.items()} == dict.fromkeys(keys, 1)
    for key, (name,) in winners.items():
        assert (root / key).read_bytes() == name.encode()
    assert files_under(root) == sorted([".tidelog.lock", *keys])


# -- opening a store from a URL (storage/store_url.py) ---------------------------------


def _opened(url: str | None, default_root: Path) -> ObjectStore:
    store = open_object_store(url, s3_endpoint="http://127.0.0.1:1", default_root=default_root)
    run(store.close)
    return store


@pytest.mark.parametrize("url", [None, ""])
def test_no_url_opens_the_default_directory(tmp_path: Path, url: str | None) -> None:
    store = _opened(url, tmp_path / "default")
    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path / "default"


def test_file_url_may_be_relative_or_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = _opened("file://./data", tmp_path / "unused")
    absolute = _opened(f"file://{tmp_path}/abs", tmp_path / "unused")
    assert isinstance(relative, LocalObjectStore) and isinstance(absolute, LocalObjectStore)
    assert (relative.root, absolute.root) == (tmp_path / "data", tmp_path / "abs")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", "s3://bucket"),
        ("s3://bucket/", "s3://bucket"),
        ("s3://my.bucket-1/tidelog/prod/", "s3://my.bucket-1/tidelog/prod"),
    ],
)
def test_s3_url_names_bucket_and_prefix(tmp_path: Path, url: str, expected: str) -> None:
    store = _opened(url, tmp_path)
    assert isinstance(store, S3ObjectStore)
    assert store.url == expected


@pytest.mark.parametrize(
    "url",
    ["http://host/x", "/plain/path", "s3:/bucket", "s3://", "s3://Upper", "s3://a", "file://"],
)
def test_other_urls_raise_a_one_line_lowercase_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_object_store(url, s3_endpoint=None, default_root=tmp_path)
    message = str(caught.value)
    assert message.splitlines() == [message]
    assert message[0].islower()
    assert f"url={url}" in message

"""FaultyObjectStore and its `fault+URL?switch=PATH` form: an outage while a file exists.

No sockets and no sleeps: the wrapped store is a LocalObjectStore in tmp_path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tidelog.storage.faulty_store import FaultyObjectStore
from tidelog.storage.local_store import LocalObjectStore
from tidelog.storage.object_store import ObjectStore, ObjectStoreUnavailable
from tidelog.storage.store_url import open_object_store

T = TypeVar("T")


def run(check: Callable[[], Awaitable[T]]) -> T:
    async def awaited() -> T:
        return await check()

    return asyncio.run(awaited())


def opened(url: str, tmp_path: Path) -> ObjectStore:
    return open_object_store(url, s3_endpoint=None, default_root=tmp_path / "default")


def test_every_call_fails_while_the_switch_exists_and_nothing_reaches_the_store(
    tmp_path: Path,
) -> None:
    switch = tmp_path / "outage"
    store = opened(f"fault+file://{tmp_path}/bucket?switch={switch}", tmp_path)
    run(lambda: store.put("kept", b"before"))
    switch.touch()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get("kept"),
        lambda: store.get_range("kept", 0, 2),
        lambda: store.head("kept"),
        lambda: store.put("new", b"x"),
        lambda: store.put_if_absent("new", b"x"),
        lambda: store.put_if_match("kept", b"x", "etag"),
        lambda: store.list(""),
        lambda: store.delete("kept"),
    ]
    for call in calls:
        with pytest.raises(ObjectStoreUnavailable, match="switched off"):
            run(call)
    assert sorted(p.name for p in (tmp_path / "bucket").iterdir()) == [".tidelog.lock", "kept"]
    switch.unlink()
    assert run(lambda: store.get("kept")) == b"before"
    run(lambda: store.put_if_absent("new", b"after"))
    assert [info.key for info in run(lambda: store.list(""))] == ["kept", "new"]
    run(store.close)


def test_fault_url_wraps_the_inner_url(tmp_path: Path) -> None:
    store = opened(f"fault+file://{tmp_path}/b?switch={tmp_path}/sw", tmp_path)
    assert isinstance(store, FaultyObjectStore)
    assert store.url == f"fault+{(tmp_path / 'b').as_uri()}?switch={tmp_path}/sw"
    run(store.close)


@pytest.mark.parametrize(
    "url",
    [
        "fault+file:///tmp/b",  # no switch
        "fault+file:///tmp/b?switch=",
        "fault+?switch=/tmp/x",
        "fault+fault+file:///tmp/b?switch=/tmp/x?switch=/tmp/y",
        "fault+http://x?switch=/tmp/x",
    ],
)
def test_bad_fault_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="url"):
        opened(url, tmp_path)


def test_the_wrapper_leaves_the_inner_store_usable_directly(tmp_path: Path) -> None:
    inner = LocalObjectStore(tmp_path / "bucket")
    switch = tmp_path / "outage"
    switch.touch()
    store = FaultyObjectStore(inner, switch)
    with pytest.raises(ObjectStoreUnavailable):
        run(lambda: store.put("k", b"v"))
    run(lambda: inner.put("k", b"v"))
    assert run(lambda: inner.get("k")) == b"v"

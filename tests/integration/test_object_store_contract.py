"""The ObjectStore contract, written once and run against every backend.

Backends: the local directory store, S3ObjectStore on moto's server, and S3ObjectStore on
SeaweedFS. Each test gets a fresh, empty store (a new directory, or a new prefix in a
bucket shared by the module: creating a SeaweedFS bucket costs ~0.3 s). The last
section pins what only the S3 store does: error mapping, bucket creation, the probe for
servers that ignore conditional writes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import crc32c
import pytest

from tidelog.broker.processes import free_ports
from tidelog.broker.processes.s3_servers import S3Server
from tidelog.storage import paths
from tidelog.storage.commit_log import CommitContent
from tidelog.storage.local_store import LocalObjectStore
from tidelog.storage.object_store import (
    Buffer,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    PreconditionFailed,
)
from tidelog.storage.ownership import open_stream, read_stream, seal_stream
from tidelog.storage.s3_store import ConditionalWritesIgnored, S3ObjectStore

pytestmark = pytest.mark.integration

BACKENDS = ["local", "moto", "seaweedfs"]
S3_BACKENDS = ["moto", "seaweedfs"]
_SERVER_FIXTURE = {"moto": "moto_s3", "seaweedfs": "seaweed_s3"}


def _s3_server(request: pytest.FixtureRequest, backend: str) -> S3Server:
    server: S3Server = request.getfixturevalue(_SERVER_FIXTURE[backend])
    return server


def _s3_store(server: S3Server, bucket: str, prefix: str = "tidelog") -> S3ObjectStore:
    return S3ObjectStore(bucket, prefix, endpoint_url=server.endpoint_url, region=server.region)


@pytest.fixture(scope="module")
def shared_buckets() -> dict[str, str]:
    """One bucket per S3 server for the contract tests; each test gets its own prefix."""
    return {}


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, shared_buckets: dict[str, str]
) -> Iterator[ObjectStore]:
    """A fresh, empty store: a new directory, or a new prefix in the server's bucket."""
    made = fresh_store(request, request.param, tmp_path, shared_buckets)
    yield made
    asyncio.run(made.close())


def fresh_store(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, shared_buckets: dict[str, str]
) -> ObjectStore:
    """An empty store of `backend`; an S3 one in the module's bucket of that server."""
    if backend == "local":
        return LocalObjectStore(tmp_path / "objects")
    server = _s3_server(request, backend)
    if backend not in shared_buckets:
        shared_buckets[backend] = server.create_bucket()
    return _s3_store(server, shared_buckets[backend], f"test-{uuid.uuid4().hex}")


def run(check: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(_awaited(check))


async def _awaited(check: Callable[[], Awaitable[Any]]) -> Any:
    return await check()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# -- the contract ----------------------------------------------------------------------


def test_put_then_get_and_head_agree(store: ObjectStore) -> None:
    async def check() -> None:
        etag = await store.put("a/b/c.bin", b"hello")
        assert await store.get("a/b/c.bin") == b"hello"
        assert await store.head("a/b/c.bin") == ObjectInfo("a/b/c.bin", 5, etag)
        assert '"' not in etag  # unquoted; otherwise opaque (md5 on S3, stat-based locally)

    run(check)


def test_a_list_of_buffers_is_stored_back_to_back(store: ObjectStore) -> None:
    parts: list[bytes | bytearray | memoryview] = [
        b"head-",
        bytearray(b"x" * 70_000),
        memoryview(b"--tail"),
        b"",
    ]

    async def check() -> None:
        await store.put_if_absent("parts", parts)
        assert await store.get("parts") == b"head-" + b"x" * 70_000 + b"--tail"
        await store.put("parts2", [memoryview(bytearray(b"ab")), b"cd"])
        assert await store.get_range("parts2", 1, 2) == b"bc"

    run(check)


def test_put_overwrites_and_changes_the_etag(store: ObjectStore) -> None:
    async def check() -> None:
        first = await store.put("k", b"one")
        second = await store.put("k", bytearray(b"two!"))
        assert first != second
        assert await store.get("k") == b"two!"
        assert await store.head("k") == ObjectInfo("k", 4, second)

    run(check)


def test_put_accepts_memoryview_and_bytearray(store: ObjectStore) -> None:
    async def check() -> None:
        payload = bytearray(b"0123456789")
        await store.put_if_absent("mv", memoryview(payload)[2:6])
        assert await store.get("mv") == b"2345"

    run(check)


def test_put_if_absent_twice_keeps_the_first(store: ObjectStore) -> None:
    async def check() -> None:
        etag = await store.put_if_absent("claim", b"first")
        with pytest.raises(PreconditionFailed):
            await store.put_if_absent("claim", b"second")
        assert await store.get("claim") == b"first"
        assert await store.head("claim") == ObjectInfo("claim", 5, etag)

    run(check)


def test_put_if_match_with_the_current_etag_replaces(store: ObjectStore) -> None:
    async def check() -> None:
        etag = await store.put("doc", b"v1")
        new_etag = await store.put_if_match("doc", b"v2", etag)
        assert await store.get("doc") == b"v2"
        assert await store.head("doc") == ObjectInfo("doc", 2, new_etag)

    run(check)


def test_put_if_match_with_a_stale_etag_fails_and_keeps_the_object(store: ObjectStore) -> None:
    async def check() -> None:
        stale = await store.put("doc", b"v1")
        await store.put("doc", b"v2")
        with pytest.raises(PreconditionFailed):
            await store.put_if_match("doc", b"v3", stale)
        assert await store.get("doc") == b"v2"

    run(check)


def test_put_if_match_on_a_missing_key_fails_and_creates_nothing(store: ObjectStore) -> None:
    async def check() -> None:
        with pytest.raises(PreconditionFailed):
            await store.put_if_match("ghost", b"x", md5(b"x"))
        assert await store.head("ghost") is None

    run(check)


def test_missing_key_reads_fail_and_delete_is_quiet(store: ObjectStore) -> None:
    async def check() -> None:
        with pytest.raises(ObjectNotFound):
            await store.get("nope")
        with pytest.raises(ObjectNotFound):
            await store.get_range("nope", 0, 10)
        with pytest.raises(ObjectNotFound):
            await store.get_range("nope", 0, 0)
        assert await store.head("nope") is None
        await store.delete("nope")

    run(check)


def test_delete_removes_and_frees_the_key_for_put_if_absent(store: ObjectStore) -> None:
    async def check() -> None:
        await store.put_if_absent("once", b"a")
        await store.delete("once")
        assert await store.head("once") is None
        await store.put_if_absent("once", b"b")
        assert await store.get("once") == b"b"

    run(check)


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 4, b"0123"),
        (3, 4, b"3456"),
        (8, 4, b"89"),  # fewer bytes only at the end
        (9, 1, b"9"),
        (10, 4, b""),  # starting exactly at the end
        (25, 4, b""),  # starting past the end
        (4, 0, b""),
        (0, 1000, b"0123456789"),
    ],
)
def test_get_range_returns_length_bytes_or_fewer_at_the_end(
    store: ObjectStore, start: int, length: int, expected: bytes
) -> None:
    async def check() -> bytes:
        await store.put("r", b"0123456789")
        return await store.get_range("r", start, length)

    assert run(check) == expected


def test_get_range_of_an_empty_object_is_empty(store: ObjectStore) -> None:
    async def check() -> tuple[bytes, bytes]:
        await store.put("empty", b"")
        return await store.get("empty"), await store.get_range("empty", 0, 8)

    assert run(check) == (b"", b"")


def test_get_range_rejects_negative_arguments(store: ObjectStore) -> None:
    async def check() -> None:
        with pytest.raises(ValueError):
            await store.get_range("r", -1, 4)
        with pytest.raises(ValueError):
            await store.get_range("r", 0, -4)

    run(check)


_LIST_KEYS = ["log/10", "log/02", "log/01", "logs", "log/sub/x", "snap/1", "a"]


def test_list_is_sorted_and_filtered_by_prefix(store: ObjectStore) -> None:
    async def check() -> tuple[list[str], list[str], list[str]]:
        for key in _LIST_KEYS:
            await store.put(key, key.encode())
        everything = await store.list("")
        under_log = await store.list("log/")
        starts_log = await store.list("log")
        return [i.key for i in everything], [i.key for i in under_log], [i.key for i in starts_log]

    everything, under_log, starts_log = run(check)
    assert everything == sorted(_LIST_KEYS)
    assert under_log == ["log/01", "log/02", "log/10", "log/sub/x"]
    assert starts_log == ["log/01", "log/02", "log/10", "log/sub/x", "logs"]


def test_list_honours_start_after(store: ObjectStore) -> None:
    async def check() -> tuple[list[str], list[str], list[str]]:
        for key in _LIST_KEYS:
            await store.put(key, key.encode())
        after_02 = await store.list("log/", start_after="log/02")
        after_last = await store.list("log/", start_after="log/zzz")
        before_all = await store.list("log/", start_after="a")
        return [i.key for i in after_02], [i.key for i in after_last], [i.key for i in before_all]

    after_02, after_last, before_all = run(check)
    assert after_02 == ["log/10", "log/sub/x"]
    assert after_last == []
    assert before_all == ["log/01", "log/02", "log/10", "log/sub/x"]


def test_list_reports_size_and_etag_like_head(store: ObjectStore) -> None:
    async def check() -> None:
        await store.put("s/one", b"1")
        await store.put("s/three", b"333")
        listed = await store.list("s/")
        assert listed == [await store.head("s/one"), await store.head("s/three")]
        assert [i.size for i in listed] == [1, 3]

    run(check)


def test_list_of_an_unknown_prefix_is_empty(store: ObjectStore) -> None:
    assert run(lambda: store.list("nothing/here/")) == []


def test_concurrent_put_if_absent_has_exactly_one_winner(store: ObjectStore) -> None:
    async def attempt(i: int) -> int | None:
        try:
            await store.put_if_absent("race", f"writer-{i}".encode())
        except PreconditionFailed:
            return None
        return i

    async def check() -> tuple[list[int], bytes]:
        results = await asyncio.gather(*(attempt(i) for i in range(12)))
        return [r for r in results if r is not None], await store.get("race")

    winners, stored = run(check)
    assert len(winners) == 1
    assert stored == f"writer-{winners[0]}".encode()


def test_a_fenced_writers_commits_are_refused_or_ignored(store: ObjectStore) -> None:
    """Fencing on every backend: once a broker's stream is sealed, its writes at the
    sealed position are refused by the store, and any it lands later take no effect."""

    async def check() -> None:
        stream = paths.stream_id(1, 0)
        writer = open_stream(store, stream, node_id=1, clock_ms=lambda: 0)
        header, parts, start = writer.encode(CommitContent(({"op": "offsets", "group": "g",
                                             "ts": 0, "offsets": [["t", 0, 5, -1, None]]},)),
                                             writer.state.head_id)  # fmt: skip
        await writer.put(0, parts)
        assert writer.apply_own(0, header, start)
        # Another broker takes the stream over: it seals position 1.
        sealed = await seal_stream(store, stream, by="x", node_id=2, epoch=7, clock_ms=lambda: 0)
        assert sealed.state.sealed_by == "x" and sealed.state.sealed_seq == 1
        # The old writer, unaware (it still holds epoch 0), writes on.
        _, late_parts, _ = writer.encode(CommitContent(), writer.state.head_id)
        with pytest.raises(PreconditionFailed):
            await writer.put(1, late_parts)  # the sealed position: refused by the store
        await writer.put(2, late_parts)  # a later position lands ...
        reread = await read_stream(store, stream, node_id=3, clock_ms=lambda: 0)
        assert reread.state.seq == 2 and reread.state.orphans == 1  # ... and counts for nothing
        assert reread.state.group_offsets["g"][("t", 0)].offset == 5
        assert reread.state.head_id == sealed.state.head_id

    run(check)


def test_concurrent_put_if_match_loses_no_update(store: ObjectStore) -> None:
    workers, increments = 4, 3

    async def increment_n_times() -> int:
        conflicts = 0
        for _ in range(increments):
            while True:
                info = await store.head("counter")
                assert info is not None
                value = int(await store.get("counter"))
                try:
                    await store.put_if_match("counter", str(value + 1).encode(), info.etag)
                    break
                except PreconditionFailed:
                    conflicts += 1
        return conflicts

    async def check() -> tuple[int, list[int]]:
        await store.put("counter", b"0")
        conflicts = await asyncio.gather(*(increment_n_times() for _ in range(workers)))
        return int(await store.get("counter")), conflicts

    final, _conflicts = run(check)
    assert final == workers * increments


# -- S3ObjectStore only ----------------------------------------------------------------


@pytest.mark.parametrize("backend", S3_BACKENDS)
def test_s3_server_refuses_false_conditions(request: pytest.FixtureRequest, backend: str) -> None:
    server = _s3_server(request, backend)
    store = _s3_store(server, server.create_bucket())

    async def check() -> None:
        try:
            await store.verify_conditional_writes()
            assert await store.list("") == []  # the probe cleans up after itself
        finally:
            await store.close()

    run(check)


def test_probe_detects_a_server_that_ignores_conditions(moto_s3: S3Server) -> None:
    store = _s3_store(moto_s3, moto_s3.create_bucket())
    # Make the wire look like a server that drops If-None-Match / If-Match.
    store._once_client.meta.events.register("before-call.s3.PutObject", _drop_conditions)

    async def check() -> None:
        try:
            with pytest.raises(ConditionalWritesIgnored):
                await store.verify_conditional_writes()
        finally:
            await store.close()

    run(check)


def _drop_conditions(params: dict[str, Any], **_: Any) -> None:
    params["headers"].pop("If-None-Match", None)
    params["headers"].pop("If-Match", None)


def test_every_put_carries_a_crc32c_the_server_checks(seaweed_s3: S3Server) -> None:
    """The body is not hashed for the signature; its CRC-32C is sent and checked instead.

    SeaweedFS verifies the header (a wrong one is refused with BadDigest) and keeps it
    for HEAD; moto does neither, so this runs on SeaweedFS only."""
    bucket = seaweed_s3.create_bucket()
    store = _s3_store(seaweed_s3, bucket, "crc")
    parts: list[Buffer] = [b"one ", bytearray(b"two "), memoryview(b"three")]

    async def check() -> None:
        try:
            await store.put("plain", parts)
            etag = await store.put_if_absent("absent", b"first")
            await store.put_if_match("absent", b"second", etag)
        finally:
            await store.close()

    run(check)
    client = seaweed_s3.client()
    for key, body in (("plain", b"one two three"), ("absent", b"second")):
        head = client.head_object(Bucket=bucket, Key=f"crc/{key}", ChecksumMode="ENABLED")
        expected = base64.b64encode(crc32c.crc32c(body).to_bytes(4, "big")).decode()
        assert head.get("ChecksumCRC32C") == expected, key


@pytest.mark.parametrize("backend", S3_BACKENDS)
def test_prefixes_isolate_stores_in_one_bucket(
    request: pytest.FixtureRequest, backend: str
) -> None:
    server = _s3_server(request, backend)
    bucket = server.create_bucket()
    left, right = _s3_store(server, bucket, "left"), _s3_store(server, bucket, "right/")

    async def check() -> None:
        try:
            await left.put("k", b"left")
            await right.put_if_absent("k", b"right")
            assert await left.get("k") == b"left"
            assert [i.key for i in await right.list("")] == ["k"]
            assert right.url == f"s3://{bucket}/right"
        finally:
            await left.close()
            await right.close()

    run(check)


@pytest.mark.parametrize("backend", S3_BACKENDS)
def test_ensure_bucket_creates_once_and_is_idempotent(
    request: pytest.FixtureRequest, backend: str
) -> None:
    server = _s3_server(request, backend)
    store = _s3_store(server, f"fresh-{server.create_bucket()}")

    async def check() -> None:
        try:
            with pytest.raises(ObjectStoreError):
                await store.put("k", b"x")  # no bucket yet
            await store.ensure_bucket()
            await store.ensure_bucket()
            await store.put("k", b"x")
            assert await store.get("k") == b"x"
        finally:
            await store.close()

    run(check)


def test_unreachable_endpoint_is_unavailable(s3_credentials: None) -> None:
    port = free_ports(1)[0]  # nothing listens there
    store = S3ObjectStore("bucket", endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1")

    async def check() -> None:
        try:
            with pytest.raises(ObjectStoreUnavailable):
                await store.get("k")
            with pytest.raises(ObjectStoreUnavailable):
                await store.put_if_absent("k", b"x")
        finally:
            await store.close()

    run(check)


def test_wrong_credentials_are_an_error_but_not_retriable(
    seaweed_s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = seaweed_s3.create_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = _s3_store(seaweed_s3, bucket)

    async def check() -> None:
        try:
            with pytest.raises(ObjectStoreError) as caught:
                await store.put("k", b"x")
            assert not isinstance(caught.value, ObjectStoreUnavailable | PreconditionFailed)
        finally:
            await store.close()

    run(check)

"""The drill's bucket: a temp directory or an S3 bucket, and the means to break it.

Owns: the bucket a drill's brokers share, and (for --store s3 without --s3-endpoint) the
local S3 server the drill starts. Each broker reaches S3 through its own loopback
`TcpProxy`, so the drill can cut the store (an outage) and measure what one broker read
from the bucket in a window (bytes and GET requests through its proxy). The file store
is opened as `fault+file://DIR?switch=FILE`, so `cut` creates FILE and every call of the
brokers fails until `restore` removes it; what a broker read from a directory is not
measurable from outside, so `reads` is None there and the report says what it shows
instead. Guarantees: `close` stops the proxies and any server the drill started.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tidelog.broker.drills.processes import DrillError, StoreArgs
from tidelog.broker.drills.tcp_proxy import TcpProxy
from tidelog.broker.processes.s3_servers import REGION, S3Server, running_moto, running_seaweedfs


@dataclass(frozen=True)
class Reads:
    """What went from the store to one broker between two snapshots of its proxy."""

    bytes: int
    gets: int

    def since(self, earlier: Reads) -> Reads:
        return Reads(self.bytes - earlier.bytes, self.gets - earlier.gets)


class DrillStore(Protocol):
    kind: str

    def describe(self) -> str: ...

    def for_broker(self, node_id: int) -> StoreArgs: ...

    def for_inspect(self) -> StoreArgs:
        """The store itself, without fault switch or proxy (reads do not count)."""
        ...

    def usage(self) -> tuple[int, int]:
        """(objects, bytes) in the bucket now."""
        ...

    def read_counter(self, node_id: int) -> Reads | None:
        """Totals so far through this broker's connection to the store (None: unmeasured)."""
        ...

    def cut(self) -> None: ...

    def restore(self) -> None: ...

    def close(self) -> None: ...


class FileStore:
    kind = "file"

    def __init__(self, tmp: Path) -> None:
        self.bucket = tmp / "bucket"
        self.bucket.mkdir()
        self.switch = tmp / "store-outage"

    def describe(self) -> str:
        return f"file store {self.bucket} (outage switch {self.switch})"

    def for_broker(self, node_id: int) -> StoreArgs:
        return StoreArgs(f"fault+file://{self.bucket}?switch={self.switch}")

    def for_inspect(self) -> StoreArgs:
        return StoreArgs(f"file://{self.bucket}")

    def usage(self) -> tuple[int, int]:
        files = [p for p in self.bucket.rglob("*") if p.is_file() and not _is_temp(p)]
        return len(files), sum(p.stat().st_size for p in files)

    def read_counter(self, node_id: int) -> Reads | None:
        return None

    def cut(self) -> None:
        self.switch.touch()

    def restore(self) -> None:
        self.switch.unlink(missing_ok=True)

    def close(self) -> None:
        self.restore()


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".tidelog")


class S3Store:
    kind = "s3"

    def __init__(self, server: S3Server, stack: contextlib.ExitStack) -> None:
        self.server = server
        self._stack = stack
        self.bucket = f"tidelog-drill-{uuid.uuid4().hex[:12]}"
        self._client = server.client()
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except Exception as exc:  # botocore's errors: unreachable, refused, bad credentials
            raise DrillError(
                f"cannot create the drill's bucket endpoint={server.endpoint_url} error={exc}"
            ) from exc
        self._host, _, port = server.endpoint_url.removeprefix("http://").partition(":")
        self._port = int(port.split("/")[0] or 80)
        self.proxies: dict[int, TcpProxy] = {}

    def describe(self) -> str:
        return f"s3 bucket {self.bucket} on {self.server.name} at {self.server.endpoint_url}"

    def for_broker(self, node_id: int) -> StoreArgs:
        proxy = self.proxies.get(node_id)
        if proxy is None:
            proxy = self.proxies[node_id] = TcpProxy(self._host, self._port)
        return StoreArgs(f"s3://{self.bucket}/drill", proxy.url, self.server.env())

    def for_inspect(self) -> StoreArgs:
        return StoreArgs(f"s3://{self.bucket}/drill", self.server.endpoint_url, self.server.env())

    def usage(self) -> tuple[int, int]:
        objects = size = 0
        pages = self._client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                objects += 1
                size += int(item["Size"])
        return objects, size

    def read_counter(self, node_id: int) -> Reads | None:
        proxy = self.proxies[node_id]
        return Reads(proxy.bytes_down, proxy.gets)

    def cut(self) -> None:
        for proxy in self.proxies.values():
            proxy.cut()

    def restore(self) -> None:
        for proxy in self.proxies.values():
            proxy.restore()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        self._client.close()
        self._stack.close()


def open_store(kind: str, tmp: Path, endpoint: str | None, server: str) -> DrillStore:
    """The drill's store; for s3 without an endpoint, a `server` (moto|seaweedfs) it starts."""
    if kind == "file":
        return FileStore(tmp)
    stack = contextlib.ExitStack()
    try:
        if endpoint:
            s3 = _external_server(endpoint)
        else:
            home = tmp / f"s3-{server}"
            home.mkdir()
            start = running_moto if server == "moto" else running_seaweedfs
            try:
                s3 = stack.enter_context(start(home))
            except RuntimeError as exc:
                raise DrillError(f"cannot start the s3 server server={server} error={exc}") from exc
        return S3Store(s3, stack)
    except BaseException:
        stack.close()
        raise


def _external_server(endpoint: str) -> S3Server:
    access = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        raise DrillError(
            "--s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
        )
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or REGION
    return S3Server("external", endpoint.rstrip("/"), access, secret, region)

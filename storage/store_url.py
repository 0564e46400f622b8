"""Turning an object-store URL from the command line into an ObjectStore.

Owns: the URL syntax. Guarantees: `file://PATH` (relative paths allowed, e.g.
`file://./data`) opens a LocalObjectStore; `s3://BUCKET[/PREFIX]` opens an S3ObjectStore
at the given endpoint; `fault+URL?switch=PATH` opens URL wrapped in a FaultyObjectStore
that fails every call while the file PATH exists (outage drills and tests); no URL opens
a LocalObjectStore at the default root; anything else raises ValueError with a one-line
lowercase message, and nothing is touched on the network (create the bucket or probe
the server afterwards, asynchronously).
"""

from __future__ import annotations

import re
from pathlib import Path

from tidelog.storage.faulty_store import FaultyObjectStore
from tidelog.storage.local_store import LocalObjectStore
from tidelog.storage.object_store import ObjectStore
from tidelog.storage.s3_store import S3ObjectStore

_FILE_SCHEME = "file://"
_S3_SCHEME = "s3://"
_FAULT_SCHEME = "fault+"
_SWITCH = "?switch="
# S3's rules for new bucket names: 3-63 of a-z, 0-9, '.', '-', alphanumeric at both ends.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def open_object_store(
    url: str | None,
    *,
    s3_endpoint: str | None,
    default_root: Path,
    sse: str | None = None,
    sse_kms_key_id: str | None = None,
) -> ObjectStore:
    """The store `url` names; `s3_endpoint` and the encryption settings (`sse`,
    `sse_kms_key_id`) are used for s3:// URLs only."""
    if not url:
        return LocalObjectStore(default_root)
    if url.startswith(_FAULT_SCHEME):
        inner, switch = _inner_and_switch(url)
        store = open_object_store(
            inner,
            s3_endpoint=s3_endpoint,
            default_root=default_root,
            sse=sse,
            sse_kms_key_id=sse_kms_key_id,
        )
        return FaultyObjectStore(store, switch)
    if url.startswith(_FILE_SCHEME):
        return LocalObjectStore(file_url_path(url))
    if url.startswith(_S3_SCHEME):
        bucket, prefix = _bucket_and_prefix(url)
        return S3ObjectStore(
            bucket, prefix, endpoint_url=s3_endpoint, sse=sse, sse_kms_key_id=sse_kms_key_id
        )
    raise ValueError(
        f"unsupported object store url, use file://path or s3://bucket[/prefix] url={url}"
    )


def store_location(url: str | None, *, default_root: Path) -> str:
    """What the store `url` opens, as a stable name for people and clients: the URL of
    the store itself (a fault wrapper's inner one), `s3://BUCKET[/PREFIX]` as given or
    `file://` and the absolute path of a local store (`default_root` when no url)."""
    if url and url.startswith(_FAULT_SCHEME):
        url, _switch = _inner_and_switch(url)
    if not url:
        return default_root.resolve().as_uri()
    if url.startswith(_FILE_SCHEME):
        return file_url_path(url).resolve().as_uri()
    return url.rstrip("/")


def file_url_path(url: str) -> Path:
    path = url[len(_FILE_SCHEME) :]
    if not path:
        raise ValueError(f"file url has no path url={url}")
    return Path(path).expanduser()


def _inner_and_switch(url: str) -> tuple[str, Path]:
    inner, sep, switch = url[len(_FAULT_SCHEME) :].rpartition(_SWITCH)
    if not sep or not switch or not inner:
        raise ValueError(f"fault url needs an inner url and ?switch=PATH url={url}")
    if inner.startswith(_FAULT_SCHEME):
        raise ValueError(f"fault url cannot wrap another fault url url={url}")
    return inner, Path(switch).expanduser()


def _bucket_and_prefix(url: str) -> tuple[str, str]:
    bucket, _, prefix = url[len(_S3_SCHEME) :].partition("/")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise ValueError(f"invalid s3 bucket name bucket={bucket!r} url={url}")
    return bucket, prefix.strip("/")

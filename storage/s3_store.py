"""The object store on an S3-compatible bucket (AWS S3, SeaweedFS, moto), via boto3.

Owns: one bucket under an optional key prefix, a boto3 client pair and the thread pool
that runs their blocking calls. Guarantees:
- conditional writes are the server's: `If-None-Match: *` for put_if_absent and
  `If-Match: "<etag>"` for put_if_match, so they are atomic across brokers exactly as
  far as the server makes them (AWS, SeaweedFS and moto all honour both headers);
- a conditional write is sent once, never retried by botocore: a retry after a lost
  response would meet our own first write and report 412, so a broker would believe
  it lost a race it won. A failed send raises ObjectStoreUnavailable and the outcome is
  unknown; the caller re-reads. Every other call is idempotent and retried once;
- 412 and 409 ConditionalRequestConflict become PreconditionFailed, and so does 404 on
  If-Match (AWS and moto answer 404 there, SeaweedFS 412); 404 becomes ObjectNotFound;
  connection errors, timeouts, throttling and 5xx become ObjectStoreUnavailable;
  anything else (bad credentials, missing bucket) is a plain ObjectStoreError;
- etags are returned without quotes; short timeouts make an outage visible quickly.
Credentials come from the standard AWS environment variables and config files.
A server that ignores conditional headers would silently break fencing, so
`verify_conditional_writes()` probes for it; call it once at startup.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import functools
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
import botocore.exceptions
import crc32c
from botocore.config import Config

from tidelog.storage.object_store import (
    Data,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
    PreconditionFailed,
    as_bytes,
)

T = TypeVar("T")

_WORKERS = 16
_CONNECT_TIMEOUT_S = 2
_READ_TIMEOUT_S = 10
_PROBE_PREFIX = "_tidelog-probe/"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_UNAVAILABLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"}
)


class ConditionalWritesIgnored(ObjectStoreError):
    """The server accepted a write whose condition was false: it cannot fence brokers."""


class S3ObjectStore:
    """ObjectStore on an S3 bucket; see the module docstring for the guarantees."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
    ) -> None:
        self._bucket = bucket
        # Server-side encryption of every object written (--s3-sse): S3 encrypts at
        # rest with its own keys (AES256) or a KMS key (aws:kms); reads need nothing.
        self._encryption: dict[str, str] = {}
        if sse is not None:
            self._encryption["ServerSideEncryption"] = sse
        if sse_kms_key_id is not None:
            self._encryption["SSEKMSKeyId"] = sse_kms_key_id
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        session = boto3.session.Session()
        self._client = _make_client(session, endpoint_url, region, attempts=2)
        self._once_client = _make_client(session, endpoint_url, region, attempts=1)
        self._executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="s3-store")
        self._closed = False

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    async def get(self, key: str) -> bytes:
        return await self._run(self._get, key, None, key=key)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"negative range key={key} start={start} length={length}")
        if length == 0:
            if await self.head(key) is None:
                raise ObjectNotFound(f"no such object key={key}")
            return b""
        try:
            return await self._run(self._get, key, f"bytes={start}-{start + length - 1}", key=key)
        except _RangeNotSatisfiable:
            return b""  # start is at or past the end of an existing object

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            response = await self._run(self._head, key, key=key)
        except ObjectNotFound:
            return None
        return ObjectInfo(key=key, size=response["ContentLength"], etag=_unquote(response))

    async def put(self, key: str, data: Data) -> str:
        return await self._run(self._put, self._client, key, data, {}, key=key)

    async def put_if_absent(self, key: str, data: Data) -> str:
        conditions = {"IfNoneMatch": "*"}
        return await self._run(self._put, self._once_client, key, data, conditions, key=key)

    async def put_if_match(self, key: str, data: Data, etag: str) -> str:
        conditions = {"IfMatch": f'"{etag}"'}
        try:
            return await self._run(self._put, self._once_client, key, data, conditions, key=key)
        except ObjectNotFound:
            raise PreconditionFailed(f"object does not exist key={key}") from None

    async def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        return await self._run(self._list, prefix, start_after, key=prefix)

    async def delete(self, key: str) -> None:
        await self._run(self._delete, key, key=key)

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; safe to call from several brokers at once."""
        await self._run(self._ensure_bucket, key="")

    async def verify_conditional_writes(self) -> None:
        """Raise ConditionalWritesIgnored if the server ignores If-None-Match or If-Match."""
        key = f"{_PROBE_PREFIX}{uuid.uuid4().hex}"
        etag = await self.put_if_absent(key, b"probe")
        try:
            await self._expect_refused(self.put_if_absent(key, b"overwrite"), "If-None-Match")
            stale = "0" * 32 if etag != "0" * 32 else "1" * 32
            await self._expect_refused(self.put_if_match(key, b"overwrite", stale), "If-Match")
        finally:
            await self.delete(key)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._shutdown)

    # -- blocking halves, run in the pool --------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, key: str) -> T:
        """`fn(*args)` in the pool; `key` names the object in error messages."""
        loop = asyncio.get_running_loop()
        where = f"s3://{self._bucket}/{self._full(key)}"
        call = functools.partial(_translating, fn, where, *args)
        return await loop.run_in_executor(self._executor, call)

    def _get(self, key: str, byte_range: str | None) -> bytes:
        extra = {"Range": byte_range} if byte_range else {}
        response = self._client.get_object(Bucket=self._bucket, Key=self._full(key), **extra)
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def _head(self, key: str) -> dict[str, Any]:
        response: dict[str, Any] = self._client.head_object(
            Bucket=self._bucket, Key=self._full(key)
        )
        return response

    def _put(self, client: Any, key: str, data: Data, conditions: dict[str, str]) -> str:
        body = as_bytes(data)
        checksum = base64.b64encode(crc32c.crc32c(body).to_bytes(4, "big")).decode()
        response = client.put_object(
            Bucket=self._bucket,
            Key=self._full(key),
            Body=body,
            ChecksumCRC32C=checksum,
            **conditions,
            **self._encryption,
        )
        return _unquote(response)

    def _list(self, prefix: str, start_after: str | None) -> builtins.list[ObjectInfo]:
        params = {"Bucket": self._bucket, "Prefix": self._full(prefix)}
        if start_after is not None:
            params["StartAfter"] = self._full(start_after)
        infos = []
        for page in self._client.get_paginator("list_objects_v2").paginate(**params):
            for item in page.get("Contents", ()):
                key = item["Key"][len(self._prefix) :]
                infos.append(ObjectInfo(key=key, size=item["Size"], etag=_unquote(item)))
        return infos

    def _delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=self._full(key))

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self._bucket)
            return
        except botocore.exceptions.ClientError as exc:
            if _status(exc) != 404:
                raise
        params: dict[str, Any] = {"Bucket": self._bucket}
        region = self._client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**params)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _full(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def _expect_refused(self, write: Awaitable[object], condition: str) -> None:
        try:
            await write
        except PreconditionFailed:
            return
        raise ConditionalWritesIgnored(
            f"server ignored a false {condition} condition, refusing to use it "
            f"url={self.url} condition={condition}"
        )

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()
        self._once_client.close()


class _RangeNotSatisfiable(ObjectStoreError):
    """416: the range starts at or past the end of an existing object."""


def _make_client(
    session: boto3.session.Session, endpoint_url: str | None, region: str | None, attempts: int
) -> Any:
    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"max_attempts": attempts, "mode": "standard"},
        # Every PUT carries its CRC-32C, which the server checks and the signature
        # covers, so the body itself is not hashed again with SHA-256 for the
        # signature (botocore would on plain-HTTP endpoints: a fifth of our CPU).
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        max_pool_connections=_WORKERS,
        # Checksums only where S3 demands them: many S3-compatible servers reject the
        # streaming trailers newer botocore sends by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _translating(fn: Callable[..., T], where: str, *args: Any) -> T:
    """Run one blocking boto3 call, turning its exceptions into ours."""
    try:
        return fn(*args)
    except botocore.exceptions.ClientError as exc:
        raise _from_client_error(exc, where) from exc
    except (
        botocore.exceptions.ConnectionError,
        botocore.exceptions.HTTPClientError,
        botocore.exceptions.IncompleteReadError,
    ) as exc:
        raise ObjectStoreUnavailable(f"s3 unreachable url={where} error={exc}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise ObjectStoreError(f"s3 client error url={where} error={exc}") from exc


def _from_client_error(exc: botocore.exceptions.ClientError, where: str) -> ObjectStoreError:
    status, code = _status(exc), _code(exc)
    context = f"url={where} status={status} code={code}"
    if status == 412 or code == "PreconditionFailed":
        return PreconditionFailed(f"s3 condition failed {context}")
    if status == 409 and code == "ConditionalRequestConflict":
        return PreconditionFailed(f"s3 conditional write lost a race {context}")
    if status == 416:
        return _RangeNotSatisfiable(f"s3 range not satisfiable {context}")
    if status == 404 and code in _NOT_FOUND_CODES:
        return ObjectNotFound(f"no such object {context}")
    if status >= 500 or code in _UNAVAILABLE_CODES:
        return ObjectStoreUnavailable(f"s3 unavailable {context}")
    return ObjectStoreError(f"s3 request failed {context} message={_message(exc)}")


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _unquote(response: dict[str, Any]) -> str:
    return str(response["ETag"]).strip('"')

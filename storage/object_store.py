"""The object-store contract every backend honours (local directory, S3).

Owns: the async interface and its errors. Guarantees, for every implementation:
- `put_if_absent` creates the key only if no object exists there, atomically;
- `put_if_match` replaces the object only if its current etag is the given one;
- both raise `PreconditionFailed` otherwise and leave the object untouched;
- `list` returns keys in lexical order, so zero-padded ids list in numeric order.
Transport trouble surfaces as `ObjectStoreUnavailable` (retriable), never as a
backend-specific exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ObjectStoreError(Exception):
    """Base class of every object-store failure."""


class ObjectNotFound(ObjectStoreError):
    """The key does not exist."""


class PreconditionFailed(ObjectStoreError):
    """A conditional write lost: the key exists (if-none-match) or changed (if-match)."""


class ObjectStoreUnavailable(ObjectStoreError):
    """The store did not answer or answered with a server error; the call may be retried."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


Buffer = bytes | bytearray | memoryview
# What a put accepts: one buffer, or a list of buffers stored back to back (a local
# store writes them with writev, so a commit is never joined into one big copy).
Data = Buffer | list[Buffer]


def as_bytes(data: Data) -> bytes:
    """The object's content as one bytes value (copies)."""
    if isinstance(data, list):
        return b"".join(data)
    return data if isinstance(data, bytes) else bytes(data)


class ObjectStore(Protocol):
    """Async object store. Keys are '/'-separated, relative to the store's root or prefix."""

    @property
    def url(self) -> str:
        """A human-readable location, e.g. file:///data/objects or s3://bucket/prefix."""
        ...

    async def get(self, key: str) -> bytes:
        """The whole object. Raises ObjectNotFound."""
        ...

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer only at the object's end). Raises ObjectNotFound."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and etag, or None when the key does not exist."""
        ...

    async def put(self, key: str, data: Data) -> str:
        """Create or overwrite; returns the new etag."""
        ...

    async def put_if_absent(self, key: str, data: Data) -> str:
        """Create only if absent; returns the etag. Raises PreconditionFailed if the key exists."""
        ...

    async def put_if_match(self, key: str, data: Data, etag: str) -> str:
        """Replace only if the current etag is `etag`. Raises PreconditionFailed otherwise
        (including when the key does not exist)."""
        ...

    async def list(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        """Every key starting with `prefix` (and lexically after `start_after`), sorted."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the key; deleting a missing key is not an error."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

"""What the membership (storage/membership.py and its parts) needs of the broker's
storage: the boundary between them. `LogStore` implements it; the membership never
imports the log store.

Owns: nothing but the contract below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.lease import Lease
from tidelog.storage.meta_state import MetaState
from tidelog.storage.object_store import ObjectStore
from tidelog.storage.store_config import StoreConfig
from tidelog.storage.stream_state import PartitionKey, StreamState


class MemberStorage(Protocol):
    moving: set[PartitionKey]  # keys being handed to another broker: no writes for them

    @property
    def config(self) -> StoreConfig: ...

    @property
    def store(self) -> ObjectStore:
        """The bucket."""
        ...

    @property
    def clock(self) -> Clock: ...

    @property
    def meta(self) -> CommitLog[MetaState]:
        """The metadata log, shared by every broker."""
        ...

    @property
    def stream(self) -> CommitLog[StreamState]:
        """Our own stream (a placeholder until we joined)."""
        ...

    @property
    def stream_id(self) -> str: ...

    @property
    def epoch(self) -> int: ...

    @property
    def lease(self) -> Lease: ...

    @property
    def fenced(self) -> bool: ...

    @property
    def partitions(self) -> Mapping[PartitionKey, object]:
        """The partitions we serve now."""
        ...

    def serves(self, key: PartitionKey) -> bool:
        """Ours in the metadata, and adopted into our stream for that assignment."""
        ...

    def sync_partitions(self) -> None:
        """Serve exactly what the metadata gives us and our stream adopted."""
        ...

    def step_down(self, reason: str) -> None:
        """We were fenced: refuse every write from now on."""
        ...

    async def stream_ops(self, ops: Sequence[dict[str, Any]]) -> int:
        """Commit ops to our stream with the next upload; its seq once visible."""
        ...

    async def commit_now(self) -> None:
        """A commit at once, empty if nothing waits; raises Fenced if sealed."""
        ...

    async def flush_once(self) -> int | None:
        """Upload everything appended so far; the last landed seq, None if none landed."""
        ...

    def unflushed_bytes(self) -> int: ...

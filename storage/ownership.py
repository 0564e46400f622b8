"""Who should own what, and taking a stream over: the cluster's rules, on the bucket alone.

Owns: the placement rule (rendezvous hashing of each key over the live brokers' node
ids: a broker joining or leaving moves only the keys it wins or held), a group's slot,
reading another broker's stream, and sealing it.

Guarantees: `seal_stream` returns the stream's final state, and once it returns no
commit of the stream's writer can ever take effect again (the seal holds a position in
the stream and nothing after a seal is folded). With `expect_seq`, it gives up instead
of sealing if the writer committed after that seq (it is alive after all).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
import zlib
from collections.abc import Callable, Sequence

from tidelog.storage import paths
from tidelog.storage.commit_format import CommitHeader, encode_commit
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.meta_state import GROUP_SLOTS, Member
from tidelog.storage.object_store import ObjectStore, PreconditionFailed
from tidelog.storage.store_config import StoreConfig
from tidelog.storage.stream_state import PartitionKey, StreamState

log = logging.getLogger(__name__)


class WriterAlive(Exception):
    """The stream we meant to seal moved on: its writer is alive."""


def group_slot(group: str) -> int:
    return zlib.crc32(group.encode()) % GROUP_SLOTS


def _score(key: PartitionKey, node: int) -> bytes:
    return hashlib.blake2b(f"{key[0]}\0{key[1]}\0{node}".encode(), digest_size=8).digest()


def preferred_owner(key: PartitionKey, members: Sequence[Member]) -> Member | None:
    """Rendezvous hashing on node ids: stable for the same set of nodes."""
    if not members:
        return None
    return max(members, key=lambda m: (_score(key, m.node), m.node))


def open_stream(
    store: ObjectStore,
    stream: str,
    *,
    node_id: int,
    clock_ms: Callable[[], int],
    snapshot_every: int = 256,
) -> CommitLog[StreamState]:
    return CommitLog(
        store,
        paths.stream_layout(stream),
        lambda: StreamState(stream=stream),
        node_id=node_id,
        clock_ms=clock_ms,
        snapshot_every=snapshot_every,
    )


def own_stream(
    store: ObjectStore, stream: str, config: StoreConfig, clock_ms: Callable[[], int]
) -> CommitLog[StreamState]:
    """This broker's own stream, snapshotted every `config.snapshot_every` commits."""
    return open_stream(
        store,
        stream,
        node_id=config.node_id,
        clock_ms=clock_ms,
        snapshot_every=config.snapshot_every,
    )


async def read_stream(
    store: ObjectStore, stream: str, *, node_id: int, clock_ms: Callable[[], int]
) -> CommitLog[StreamState]:
    """Another broker's stream, folded as far as it is visible now."""
    other = open_stream(store, stream, node_id=node_id, clock_ms=clock_ms)
    await other.load()
    return other


async def seal_stream(
    store: ObjectStore,
    stream: str,
    *,
    by: str,
    node_id: int,
    epoch: int,
    clock_ms: Callable[[], int],
    expect_seq: int | None = None,
) -> CommitLog[StreamState]:
    """Fold `stream` to its end and end it with a seal (unless it already is)."""
    other = await read_stream(store, stream, node_id=node_id, clock_ms=clock_ms)
    while not other.state.sealed:
        if expect_seq is not None and other.state.seq > expect_seq:
            raise WriterAlive(f"stream moved on stream={stream} seq={other.state.seq}")
        seq = other.state.seq + 1
        header = CommitHeader(
            node_id,
            epoch,
            clock_ms(),
            ({"op": "seal", "by": by},),
            (),
            uuid.uuid4().hex,
            other.state.head_id,
        )
        try:
            await store.put_if_absent(other.layout.commit_key(seq), encode_commit(header, ()))
        except PreconditionFailed:
            await other.catch_up()  # its writer (or another sealer) took the position
            continue
        other.apply_own(seq, header, 0)
        log.info("sealed stream=%s at seq=%d by=%s", stream, seq, by)
    return other

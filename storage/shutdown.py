"""The end of a broker's life: the final upload, and saying what did not reach the
bucket and where it is now.

Owns: the retry loop of the final upload (bounded by the caller's deadline) and the
shutdown log line naming every partition range not in the bucket.

Guarantees: in wal mode whatever is not in the bucket stays in the WAL for the next
start on the data dir (acknowledged records included); in object mode it was never
acknowledged. Either way the log says which offsets of which partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Protocol

from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import Fenced
from tidelog.storage.lease import Lease
from tidelog.storage.meta_state import GROUP_TOPIC
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.stream_state import PartitionKey
from tidelog.storage.upload_backlog import UploadBacklog

log = logging.getLogger(__name__)


class Uploading(Protocol):
    """What the final upload needs of the storage (the LogStore)."""

    @property
    def backlog(self) -> UploadBacklog: ...

    @property
    def lease(self) -> Lease: ...

    @property
    def clock(self) -> Clock: ...

    async def flush_once(self) -> int | None: ...

    async def commit_now(self) -> None: ...


async def final_upload(storage: Uploading, *, retry: bool) -> bool:
    """Upload everything accepted; with `retry`, until it lands (the caller bounds
    it). Returns whether everything is in the bucket."""
    backlog, lease = storage.backlog, storage.lease
    pause = 0.1
    while True:
        if retry and backlog.wal is not None and not lease.holds():
            # Batches past the lease wait for a landed commit before they may be
            # uploaded, and the tick that would commit is stopped: commit here.
            with contextlib.suppress(Fenced):
                await storage.commit_now()
        await storage.flush_once()
        if not backlog.uncommitted_bytes:
            return True
        if not retry or lease.fenced:
            return False
        if pause == 0.1:
            log.warning(
                "final upload failed; retrying until the shutdown deadline backlog_bytes=%d",
                backlog.uncommitted_bytes,
            )
        await storage.clock.sleep(pause)
        pause = min(pause * 2, 2.0)


def report_left_behind(
    why: str, partitions: dict[PartitionKey, PartitionLog], wal_dir: Path | None
) -> None:
    """Say what is not in the bucket at shutdown, and where it is now (`wal_dir` in wal
    mode). A fenced broker's partitions belong to another broker: not for it to call."""
    left = [
        (key, part)
        for key, part in sorted(partitions.items())
        if key[0] != GROUP_TOPIC and part.next_offset > part.committed_end
    ]
    if not left:
        return
    size = sum(part.bytes_from(part.committed_end) for _, part in left)
    ranges = ",".join(
        f"{t}-{p}:[{part.committed_end},{part.next_offset})" for (t, p), part in left[:64]
    ) + (",..." if len(left) > 64 else "")
    if wal_dir is not None:
        log.error(
            "%s; what is not in the bucket stays in the wal for the next start on this "
            "data dir, which uploads it before serving (acknowledged records included, "
            "none lost) bytes=%d partitions=%d offsets=%s wal=%s",
            why,
            size,
            len(left),
            ranges,
            wal_dir,
        )
    else:
        log.error(
            "%s; records not in the bucket were never acknowledged (object mode acks "
            "only after the upload) and are dropped; their producers were not told "
            "they were stored bytes=%d partitions=%d offsets=%s",
            why,
            size,
            len(left),
            ranges,
        )


async def settle_tasks(tasks: set[asyncio.Task[Any]], *, cancel: bool) -> None:
    """Wait for background tasks to end (cancelled first with `cancel`)."""
    if cancel:
        for task in tasks:
            task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)

"""Committing ops: to the metadata log (topics, producer ids) and to our own stream
(group offsets, adoptions), each bounded by the ops timeout.

Owns: the error a caller gets when an op cannot be committed (fenced, timed out, the
bucket failing), and bringing the served partitions up to date after every attempt.

Guarantees: an op's effect is visible when its call returns; a timed-out stream op may
still land later (it stays queued, as a Kafka request that timed out may); a metadata
op refused because we are no longer a member fences this broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import CommitLog, Fenced
from tidelog.storage.errors import StoreError, fenced_error
from tidelog.storage.flusher import Flusher
from tidelog.storage.lease import Lease
from tidelog.storage.meta_state import MetaState
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.topic_catalog import MetaOps


class OpCommits:
    def __init__(
        self,
        meta: CommitLog[MetaState],
        flusher: Callable[[], Flusher],
        lease: Lease,
        clock: Clock,
        *,
        ops_timeout_s: float,
        is_member: Callable[[MetaState], bool],
        step_down: Callable[[str], None],
        after: Callable[[], None],
    ) -> None:
        self._meta = meta
        self._flusher = flusher
        self._lease = lease
        self._clock = clock
        self._timeout_s = ops_timeout_s
        self._is_member = is_member
        self._step_down = step_down
        self._after = after

    async def meta_ops(self, ops: MetaOps) -> int:
        """Append to the metadata log; its effect is visible on return."""
        if self._lease.fenced:
            raise fenced_error()
        try:
            async with self._clock.timeout(self._timeout_s):
                return await self._meta.append(ops=ops, guard=self._is_member)
        except Fenced:
            self._step_down("no longer a member of the cluster")
            raise fenced_error() from None
        except TimeoutError:
            raise self._timed_out() from None
        except ObjectStoreError as exc:
            raise StoreError(ErrorCode.kafka_storage_error, f"object store error={exc}") from None
        finally:
            self._after()

    async def stream_ops(self, ops: Sequence[dict[str, Any]]) -> int:
        """Commit ops to our stream with the next upload; visible on return."""
        if self._lease.fenced:
            raise fenced_error()
        pending = asyncio.ensure_future(self._flusher().commit_ops(list(ops)))
        try:
            async with self._clock.timeout(self._timeout_s):
                return await asyncio.shield(pending)
        except Fenced:
            raise fenced_error() from None
        except TimeoutError:
            # Still queued: it may land later, as a Kafka request that timed out may.
            raise self._timed_out() from None
        finally:
            self._after()

    def _timed_out(self) -> StoreError:
        return StoreError(
            ErrorCode.request_timed_out,
            f"object store did not take the change in time timeout_s={self._timeout_s}",
        )

"""Keeping the folded metadata log fresh enough to tell clients who leads what.

Owns: when the metadata log was last folded, and the one refresh that requests
finding it stale share.

Guarantees: `fresh` returns once the log was folded within `max_age_s` (on the
storage's clock) or a refresh failed (then the answer comes from memory, logged); a
burst of requests costs one LIST, not one each.
"""

from __future__ import annotations

import asyncio
import logging

from tidelog.storage.clock import Clock
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.meta_state import MetaState
from tidelog.storage.object_store import ObjectStoreError

log = logging.getLogger(__name__)


class MetadataRefresh:
    def __init__(self, meta: CommitLog[MetaState], clock: Clock) -> None:
        self._meta = meta
        self._clock = clock
        self._refreshed_at = 0.0
        self._refreshing: asyncio.Future[int] | None = None  # the refresh under way

    async def refresh(self) -> int:
        """Fold metadata commits other brokers appended; returns how many."""
        read = await self._meta.catch_up()
        self._refreshed_at = self._clock.monotonic()
        return read

    async def fresh(self, max_age_s: float) -> None:
        if self._clock.monotonic() - self._refreshed_at <= max_age_s:
            return
        # Requests that find the metadata stale together share one refresh: one LIST,
        # not one each in a queue (a burst of Metadata requests would wait on them all).
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh())
            # Retrieved here too, so a failure nobody waited for is not reported as lost.
            self._refreshing.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.shield(self._refreshing)
        except ObjectStoreError as exc:  # answer from what we have
            log.warning("metadata refresh failed; answering from memory error=%s", exc)

"""Which other brokers are alive: their streams, watched through the bucket.

Owns: when each other member's stream last moved (a LIST of its commits each tick),
which of them stayed silent for their session timeout, and the warning for a silent
wal-mode broker whose WAL we wait for.

Guarantees: a member is silent only once its stream did not move for
max(our lease, its session timeout) on the storage's clock; a stream that moves (or
that we just started watching) counts as alive from that moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tidelog.storage import paths
from tidelog.storage.member_storage import MemberStorage
from tidelog.storage.meta_state import Member

log = logging.getLogger(__name__)


@dataclass
class _Seen:
    last_key: str | None
    last_seq: int
    at: float  # clock.monotonic() when the stream last moved (or we started watching)


class Liveness:
    def __init__(self, storage: MemberStorage) -> None:
        self._storage = storage
        self._seen: dict[str, _Seen] = {}
        self._warned: set[str] = set()

    def alive(self) -> list[Member]:
        """Members we believe alive: ourselves, and those whose stream moved lately."""
        storage = self._storage
        me = storage.stream_id
        now = storage.clock.monotonic()
        timeout = storage.lease.seconds
        return [
            m
            for m in storage.meta.state.members.values()
            if m.stream == me
            or (m.stream in self._seen and now - self._seen[m.stream].at <= timeout)
        ]

    def moved(self, stream: str) -> None:
        """`stream`'s broker showed it is alive (it committed while we sealed)."""
        self._seen[stream].at = self._storage.clock.monotonic()

    def forget(self, stream: str) -> None:
        self._seen.pop(stream, None)

    async def silent_members(self) -> list[tuple[str, int]]:
        """Probe each other member's stream; those silent for the session timeout, with
        the last seq we saw of each."""
        storage = self._storage
        now = storage.clock.monotonic()
        silent = []
        for stream in list(storage.meta.state.members):
            if stream == storage.stream_id:
                continue
            seen = self._seen.get(stream)
            layout = paths.stream_layout(stream)
            start_after = seen.last_key if seen is not None else None
            infos = await storage.store.list(layout.log_prefix, start_after=start_after)
            if infos:
                key = infos[-1].key
                self._seen[stream] = _Seen(key, layout.parse_commit_key(key), now)
            elif seen is None:
                self._seen[stream] = _Seen(None, -1, now)
            else:
                member = storage.meta.state.members[stream]
                timeout = max(storage.lease.seconds, member.session_timeout_ms / 1000)
                if now - seen.at <= timeout:
                    continue
                if member.durability == "wal" and storage.config.wal_failover == "wait":
                    self._warn_waiting(member, now - seen.at)
                    continue
                silent.append((stream, seen.last_seq))
        return silent

    def _warn_waiting(self, member: Member, silent_s: float) -> None:
        """A silent wal-mode broker's last acks may be only in its WAL: wait for them."""
        if member.stream in self._warned:
            return
        self._warned.add(member.stream)
        log.warning(
            "broker silent, not taking its partitions over: it ran in wal mode, so records "
            "it acknowledged may be only in its WAL. Start a broker with its data dir (the "
            "WAL volume) to recover them, or `tidelog serve --replace %d` to give them up "
            "node=%d stream=%s silent_s=%.1f",
            member.node,
            member.node,
            member.stream,
            silent_s,
        )

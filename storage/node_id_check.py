"""The start-up check that no live broker has our node id.

Owns: ringing an incarnation of our node id that our data dir does not name (a `probe`
op in the metadata log), watching its stream for its session timeout, the refusal
message, and withdrawing again when we joined but must not serve.

Guarantees (docs/cluster.md): a broker never takes over a live incarnation of its own
node id by accident: one is taken at start only if our data dir names it, `--replace`
names our node id, or it stayed silent for its session timeout (on the storage's
clock) after being probed (`NodeIdInUse` otherwise).
"""

from __future__ import annotations

import datetime
import logging

from tidelog.storage import paths
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.commit_log import CommitLog, Fenced
from tidelog.storage.member_storage import MemberStorage
from tidelog.storage.meta_state import Member, MetaState
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.ownership import open_stream, seal_stream
from tidelog.storage.stream_state import StreamState

log = logging.getLogger(__name__)

_MAX_WATCH_POLL_S = 0.25


class NodeIdInUse(Exception):
    """A live broker has our node id: this one must not start (the CLI exits 2)."""


class NodeIdCheck:
    def __init__(self, storage: MemberStorage) -> None:
        self._storage = storage
        # Incarnations of our node id that stayed silent for their session timeout after
        # our probe: stream -> its last seq then (a commit after it means it is alive).
        self.silent: dict[str, int] = {}

    async def ensure_free(self, wal_owner: str | None) -> None:
        """Before joining: raise NodeIdInUse if a live broker has our node id.

        An incarnation of our node id is ours to take over at once when our data dir
        names it (we hold that dir's lock, so it died) or when `--replace` names our
        node id (the operator says it died). Any other one may be a live broker started
        elsewhere with the same id, perhaps alone and idle (such a broker commits
        nothing). So we ring it: a `probe` op in the metadata log, which a live broker
        answers with a commit at its next tick. Then we watch its stream for its session
        timeout: a commit of its own means it is alive and we refuse; silence means it
        is dead and its lease is over, so `start` takes it over without waiting again."""
        storage = self._storage
        clock = storage.clock
        node = storage.config.node_id
        if node in storage.config.replace_nodes:
            return
        suspects = {
            m.stream: m
            for m in storage.meta.state.members.values()
            if m.node == node and m.stream != wal_owner
        }
        if not suspects:
            return
        last = {stream: await self._newest_commit(stream, None) for stream in suspects}
        await storage.meta.append(ops=[{"op": "probe", "node": node}])
        started = clock.monotonic()
        longest = max(m.session_timeout_ms for m in suspects.values()) / 1000
        log.info(
            "our node id has an incarnation this data dir does not name; probed it and "
            "watching its stream to tell a live broker from a dead one node=%d streams=%s "
            "watch_s=%.1f",
            node,
            ",".join(sorted(suspects)),
            longest,
        )
        poll_s = min(_MAX_WATCH_POLL_S, longest / 20)
        while suspects:
            for stream, member in list(suspects.items()):
                key = await self._newest_commit(stream, last[stream])
                if key is not None:
                    header = await self._reader(stream).read_header(key)
                    if (header.node_id, header.epoch) == (member.node, member.epoch):
                        raise NodeIdInUse(self._refusal_text(member, header))
                    # Another broker wrote there (a seal): it is being taken over.
                    last[stream] = key
                    del suspects[stream]
                    self.silent[stream] = paths.stream_layout(stream).parse_commit_key(key)
                elif clock.monotonic() - started >= member.session_timeout_ms / 1000:
                    del suspects[stream]
                    before = last[stream]
                    layout = paths.stream_layout(stream)
                    self.silent[stream] = layout.parse_commit_key(before) if before else -1
            if suspects:
                await clock.sleep(poll_s)

    async def _newest_commit(self, stream: str, after: str | None) -> str | None:
        """The key of the newest commit in `stream` listed after `after`, or None."""
        infos = await self._storage.store.list(
            paths.stream_layout(stream).log_prefix, start_after=after
        )
        return infos[-1].key if infos else None

    def _reader(self, stream: str) -> CommitLog[StreamState]:
        storage = self._storage
        return open_stream(
            storage.store, stream, node_id=storage.config.node_id, clock_ms=storage.clock.wall_ms
        )

    async def refusal(self, member: Member, *, after: int) -> str:
        """Why we refuse to start: `member` committed after seq `after`."""
        after_key = paths.stream_layout(member.stream).commit_key(after) if after >= 0 else None
        key = await self._newest_commit(member.stream, after_key)
        header = await self._reader(member.stream).read_header(key) if key else None
        return self._refusal_text(member, header)

    def _refusal_text(self, member: Member, header: CommitHeader | None) -> str:
        host = f"[{member.host}]" if ":" in member.host else member.host
        if header is None:
            beat, age = "unknown", "unknown"
        else:
            at = datetime.datetime.fromtimestamp(header.timestamp_ms / 1000, datetime.UTC)
            beat = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            age = str(self._storage.clock.wall_ms() - header.timestamp_ms)
        return (
            "node id in use by a live broker; give this broker its own --node-id, or stop "
            f"that one first (--replace {member.node} takes over one known to be dead) "
            f"node_id={member.node} address={host}:{member.port} stream={member.stream} "
            f"last_heartbeat={beat} heartbeat_age_ms={age}"
        )

    async def withdraw(self) -> None:
        """Leave again right after joining, having served nothing: seal our own empty
        stream and `leave`, so nobody waits for us or takes over what we never had."""
        storage = self._storage
        me = storage.stream_id
        try:
            sealed = await seal_stream(
                storage.store,
                me,
                by=me,
                node_id=storage.config.node_id,
                epoch=storage.epoch,
                clock_ms=storage.clock.wall_ms,
            )
            leave = {"op": "leave", "stream": me, "seal_seq": sealed.state.sealed_seq}
            await storage.meta.append(ops=[leave], guard=lambda s: _is_member(s, me))
        except (Fenced, ObjectStoreError) as exc:
            log.warning("could not leave again; fenced after the session timeout error=%s", exc)


def _is_member(state: MetaState, stream: str) -> bool:
    return stream in state.members

"""This broker's part in the cluster: join, take over, adopt, hand off, watch, leave.

Owns: the start-up check that no live broker has our node id, the start-up takeovers
(the stream whose WAL we were handed, dead incarnations of our node id, `--replace`
nodes), the background tick (fold the metadata log, answer a probe for our node id,
probe other brokers' streams for liveness, fence silent ones, claim ownerless keys,
adopt what was assigned to us, hand keys to the broker they belong to), heartbeats
when idle, and the clean leave. Everything goes through the bucket: no other channel
exists.

Guarantees (docs/cluster.md):
- a key is served by at most one broker: it is assigned by compare-and-set in the
  metadata log, and adopted (its index copied into our stream) before we serve it;
- a broker is fenced only after its stream is sealed, so nothing it uploads later can
  take effect; a silent broker is fenced only if its stream did not move for the
  session timeout (a moving stream aborts the seal);
- before handing a key over we stop accepting writes for it and upload everything we
  accepted, so the new owner's copy of the index is complete;
- a broker never takes over a live incarnation of its own node id by accident: one is
  taken at start only if our data dir names it, `--replace` names our node id, or it
  stayed silent for its session timeout after being probed (`NodeIdInUse` otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tidelog.storage import paths
from tidelog.storage.commit_format import CommitHeader
from tidelog.storage.commit_log import CommitLog, Fenced
from tidelog.storage.meta_state import GROUP_TOPIC, Member, MetaState, Owner, Source
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.ownership import (
    WriterAlive,
    group_slot,
    open_stream,
    preferred_owner,
    read_stream,
    seal_stream,
)
from tidelog.storage.stream_state import PartitionKey, PartitionState, StreamState, group_rows

if TYPE_CHECKING:
    from tidelog.storage.log_store import LogStore

log = logging.getLogger(__name__)

_MIN_TICK_S = 0.1
_MAX_WATCH_POLL_S = 0.25


class NodeIdInUse(Exception):
    """A live broker has our node id: this one must not start (the CLI exits 2)."""


@dataclass
class _Seen:
    last_key: str | None
    last_seq: int
    at: float  # time.monotonic() when the stream last moved (or we started watching)


def _owner_seq(meta: MetaState, key: PartitionKey, previous: str) -> int:
    """The tenure `previous` held `key` for, now that it was taken from it (-1 if none)."""
    owner = meta.owners.get(key)
    if owner is None:
        return -1
    if owner.stream == previous:
        return owner.seq
    return next((s.tenure for s in owner.sources if s.stream == previous), -1)


class Membership:
    def __init__(self, store: LogStore) -> None:
        self._store = store
        self._sources: dict[str, CommitLog[StreamState]] = {}
        self._seen: dict[str, _Seen] = {}
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[Any] | None = None
        self._warned: set[str] = set()
        self._poked = asyncio.Event()
        self._stopping = False
        self._adopting = asyncio.Lock()
        self.commits_read = 0
        self.bytes_read = 0
        self.leaving = False
        # Incarnations of our node id that stayed silent for their session timeout after
        # our probe: stream -> its last seq then (a commit after it means it is alive).
        self._silent: dict[str, int] = {}
        self._answered_probe = -1

    # -- helpers -----------------------------------------------------------------------

    @property
    def me(self) -> str:
        return self._store.stream_id

    @property
    def _tick_s(self) -> float:
        return min(1.0, self._store.lease_s / 6)

    def is_member(self, state: MetaState) -> bool:
        return self.me in state.members

    def alive(self) -> list[Member]:
        """Members we believe alive: ourselves, and those whose stream moved lately."""
        now = time.monotonic()
        timeout = self._store.lease_s
        return [
            m
            for m in self._store.meta.state.members.values()
            if m.stream == self.me
            or (m.stream in self._seen and now - self._seen[m.stream].at <= timeout)
        ]

    def assign_new(self, state: MetaState, keys: list[PartitionKey]) -> dict[str, Any]:
        """An `assign` op placing brand-new keys on their preferred live brokers."""
        live = self.alive() or list(state.members.values())
        rows = []
        for key in keys:
            owner = preferred_owner(key, live)
            if owner is not None:
                rows.append([key[0], key[1], owner.stream, "", -1])
        return {"op": "assign", "owners": rows}

    # -- start -------------------------------------------------------------------------

    async def start(self, wal_owner: str | None) -> list[str]:
        """Take over what must be ours before we serve; returns the streams taken."""
        store = self._store
        meta = store.meta.state
        victims: dict[str, float] = {}  # stream -> how long its acks may go on (its lease)
        if wal_owner is not None and wal_owner in meta.members:
            victims[wal_owner] = 0.0  # its WAL is ours: its broker is gone (docs/cluster.md)
        for m in list(meta.members.values()):
            if m.stream == self.me or m.stream in victims:
                continue
            if m.node == store.config.node_id or m.node in store.config.replace_nodes:
                # A wal-mode broker acks from its WAL while its lease lasts; object-mode
                # acks need a commit, which the seal already rules out. One we watched
                # stay silent for its session timeout has no lease left.
                wal = m.durability == "wal" and m.stream not in self._silent
                victims[m.stream] = m.session_timeout_ms / 1000 if wal else 0
        self._answered_probe = meta.probes.get(store.config.node_id, -1)
        for stream, lease_s in sorted(victims.items()):
            try:
                await self.take_over(stream, to_self=True, expect_seq=self._silent.get(stream))
            except WriterAlive:
                # It committed after all (a slow answer to our probe): it is alive.
                await self._withdraw()
                raise NodeIdInUse(
                    await self._refusal(meta.members[stream], after=self._silent[stream])
                ) from None
            if lease_s:
                log.info(
                    "waiting out the lease of the replaced broker before serving "
                    "stream=%s lease_s=%.1f",
                    stream,
                    lease_s,
                )
                await asyncio.sleep(lease_s)
        await self.claim_ownerless()
        await self.adopt_assigned(first=True)
        return sorted(victims)

    async def ensure_node_id_free(self, wal_owner: str | None) -> None:
        """Before joining: raise NodeIdInUse if a live broker has our node id.

        An incarnation of our node id is ours to take over at once when our data dir
        names it (we hold that dir's lock, so it died) or when `--replace` names our
        node id (the operator says it died). Any other one may be a live broker started
        elsewhere with the same id, perhaps alone and idle (such a broker commits
        nothing). So we ring it: a `probe` op in the metadata log, which a live broker
        answers with a commit at its next tick. Then we watch its stream for its session
        timeout: a commit of its own means it is alive and we refuse; silence means it
        is dead and its lease is over, so `start` takes it over without waiting again."""
        store = self._store
        node = store.config.node_id
        if node in store.config.replace_nodes:
            return
        suspects = {
            m.stream: m
            for m in store.meta.state.members.values()
            if m.node == node and m.stream != wal_owner
        }
        if not suspects:
            return
        last = {stream: await self._newest_commit(stream, None) for stream in suspects}
        await store.meta.append(ops=[{"op": "probe", "node": node}])
        started = time.monotonic()
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
                    self._silent[stream] = paths.stream_layout(stream).parse_commit_key(key)
                elif time.monotonic() - started >= member.session_timeout_ms / 1000:
                    del suspects[stream]
                    before = last[stream]
                    layout = paths.stream_layout(stream)
                    self._silent[stream] = layout.parse_commit_key(before) if before else -1
            if suspects:
                await asyncio.sleep(poll_s)

    async def _newest_commit(self, stream: str, after: str | None) -> str | None:
        """The key of the newest commit in `stream` listed after `after`, or None."""
        infos = await self._store.store.list(
            paths.stream_layout(stream).log_prefix, start_after=after
        )
        return infos[-1].key if infos else None

    def _reader(self, stream: str) -> CommitLog[StreamState]:
        store = self._store
        return open_stream(
            store.store, stream, node_id=store.config.node_id, clock_ms=store.clock_ms
        )

    async def _refusal(self, member: Member, *, after: int) -> str:
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
            age = str(self._store.clock_ms() - header.timestamp_ms)
        return (
            "node id in use by a live broker; give this broker its own --node-id, or stop "
            f"that one first (--replace {member.node} takes over one known to be dead) "
            f"node_id={member.node} address={host}:{member.port} stream={member.stream} "
            f"last_heartbeat={beat} heartbeat_age_ms={age}"
        )

    async def _withdraw(self) -> None:
        """Leave again right after joining, having served nothing: seal our own empty
        stream and `leave`, so nobody waits for us or takes over what we never had."""
        store = self._store
        try:
            sealed = await seal_stream(
                store.store,
                self.me,
                by=self.me,
                node_id=store.config.node_id,
                epoch=store.epoch,
                clock_ms=store.clock_ms,
            )
            leave = {"op": "leave", "stream": self.me, "seal_seq": sealed.state.sealed_seq}
            await store.meta.append(ops=[leave], guard=self.is_member)
        except (Fenced, ObjectStoreError) as exc:
            log.warning("could not leave again; fenced after the session timeout error=%s", exc)

    def run(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """End the loop and any heartbeat. The flag, not only the cancel, ends the loop:
        a cancel that lands as a poke wakes it can be lost (docs/cluster.md)."""
        self._stopping = True
        self._poked.set()
        tasks = [t for t in (self._task, self._heartbeat) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # wait(), unlike awaiting each task under suppress(CancelledError), neither
            # raises their errors nor swallows a cancel of this stop() itself.
            await asyncio.wait(tasks)
        for task in tasks:  # retrieved, so a failed heartbeat is not logged as orphaned
            if not task.cancelled():
                task.exception()
        self._task = self._heartbeat = None

    # -- takeover ----------------------------------------------------------------------

    async def take_over(self, victim: str, *, to_self: bool, expect_seq: int | None = None) -> None:
        """Seal `victim`'s stream, fence it, and reassign its keys (to us, or spread)."""
        store = self._store
        sealed = await seal_stream(
            store.store,
            victim,
            by=self.me,
            node_id=store.config.node_id,
            epoch=store.epoch,
            clock_ms=store.clock_ms,
            expect_seq=expect_seq,
        )
        self._remember_source(victim, sealed)
        final = sealed.state

        def ops(meta: MetaState) -> list[dict[str, Any]]:
            live = [m for m in self.alive() if m.stream != victim] or [meta.members[self.me]]
            rows = []
            for key, owner in meta.owners.items():
                if owner.stream != victim:
                    continue
                target = meta.members[self.me] if to_self else preferred_owner(key, live)
                if target is not None:
                    rows.append([key[0], key[1], target.stream, victim, final.seq])
            fence = {"op": "fence", "stream": victim, "seal_seq": final.sealed_seq}
            return [fence, {"op": "assign", "owners": rows}]

        await store.meta.append(ops=ops, guard=self.is_member)
        self._seen.pop(victim, None)
        owned = [
            f"{t}-{p}:{part.committed_end}"
            for (t, p), part in sorted(final.partitions.items())
            if final.tenures.get((t, p)) == _owner_seq(store.meta.state, (t, p), victim)
        ]
        log.info(
            "took over stream=%s sealed_at=%d partitions=%d groups=%d to=%s ends=%s",
            victim,
            final.sealed_seq,
            len(owned),
            len(final.group_offsets),
            "self" if to_self else "spread",
            ",".join(owned[:64]) or "-",  # what the bucket held of each: the committed ends
        )

    def _remember_source(self, stream: str, source: CommitLog[StreamState]) -> None:
        if stream not in self._sources:
            self.commits_read += source.state.seq + 1
            self.bytes_read += source.bytes_read
        self._sources[stream] = source

    async def claim_ownerless(self) -> None:
        """Keys nobody live owns (new, or their owner left) whose place is with us."""
        store = self._store
        meta = store.meta.state
        live = self.alive()
        rows = []
        for key in meta.all_keys():
            owner = meta.owners.get(key)
            if owner is not None and owner.stream in meta.members:
                continue
            preferred = preferred_owner(key, live)
            if preferred is None or preferred.stream != self.me:
                continue
            if owner is None:
                rows.append([key[0], key[1], self.me, "", -1])
            else:
                rows.append(
                    [key[0], key[1], self.me, owner.stream, meta.ended.get(owner.stream, -1)]
                )
        if rows:
            await store.meta.append(ops=[{"op": "assign", "owners": rows}], guard=self.is_member)
            log.info("claimed ownerless keys count=%d", len(rows))

    # -- adoption ----------------------------------------------------------------------

    async def adopt_assigned(self, *, first: bool = False) -> None:
        """Copy into our stream the state of every key assigned to us, then serve it.

        One at a time (the tick and a topic creation may both call it): each sees the
        adoptions the one before it committed, so a key is adopted once per tenure."""
        async with self._adopting:
            await self._adopt_assigned(first)

    async def _adopt_assigned(self, first: bool) -> None:
        store = self._store
        meta, mine = store.meta.state, store.stream.state
        ops: list[dict[str, Any]] = []
        for key, owner in list(meta.owners.items()):
            if owner.stream != self.me or mine.tenures.get(key) == owner.seq:
                continue  # not ours, or adopted for this assignment already
            if key[0] == GROUP_TOPIC:
                op = await self._adopt_slot(key[1], owner)
                if op is not None:
                    ops.append(op)
                continue
            topic = meta.topics.get(key[0])
            if topic is None:
                continue
            part = await self._adopt_partition(key, topic.topic_id, owner)
            if part is not None:
                ops.append(part.to_json(owner.seq))
        if not ops and not first:
            return
        if first:
            # The pipeline is not running yet; the first commit also says we are alive.
            await store.stream.append(ops=ops)
        else:
            await store.stream_ops(ops)
        store.sync_partitions()
        if ops:
            ends = [f"{o['topic']}-{o['partition']}:{o['end']}" for o in ops if o["op"] == "adopt"]
            log.info("adopted keys count=%d ends=%s", len(ops), ",".join(ends[:64]) or "-")

    async def _source(self, src: Source) -> StreamState | None:
        """`src.stream` folded at least to `src.read_to`, or None if not visible yet."""
        store = self._store
        source = self._sources.get(src.stream)
        if source is None:
            source = await read_stream(
                store.store, src.stream, node_id=store.config.node_id, clock_ms=store.clock_ms
            )
            self._remember_source(src.stream, source)
        elif source.state.seq < src.read_to and not source.state.sealed:
            self.commits_read += await source.catch_up()
        state = source.state
        return state if state.seq >= src.read_to or state.sealed else None

    async def _adopt_partition(
        self, key: PartitionKey, topic_id: str, owner: Owner
    ) -> PartitionState | None:
        for src in owner.sources:
            state = await self._source(src)
            if state is None:
                return None  # not visible yet: try again next tick
            part = state.partitions.get(key)
            if state.tenures.get(key) == src.tenure and part is not None:
                return part if part.topic_id == topic_id else PartitionState(topic_id, *key)
            # That owner never adopted the key (it died first): it never wrote to it.
        return PartitionState(topic_id, key[0], key[1])

    async def _adopt_slot(self, slot: int, owner: Owner) -> dict[str, Any] | None:
        key = (GROUP_TOPIC, slot)
        groups: dict[str, Any] = {}
        for src in owner.sources:
            state = await self._source(src)
            if state is None:
                return None
            if state.tenures.get(key) == src.tenure:
                groups = {
                    g: group_rows(o)
                    for g, o in state.group_offsets.items()
                    if group_slot(g) == slot
                }
                break
        return {"op": "adopt_groups", "tenure": owner.seq, "slot": slot, "groups": groups}

    # -- the tick ----------------------------------------------------------------------

    def poke(self) -> None:
        """Tick soon: a client asked for a key we do not serve, so the metadata we folded
        may be stale (a key just assigned to us is served only after the next tick)."""
        self._poked.set()

    async def _loop(self) -> None:
        last = 0.0
        while not self._store.fenced and not self._stopping:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns normally when
            # the event is set in the same turn as the task is cancelled.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick_s):
                    await self._poked.wait()
            if self._stopping:
                return
            # A poke brings the tick forward, but not more often than every 100 ms.
            await asyncio.sleep(max(0.0, last + _MIN_TICK_S - time.monotonic()))
            self._poked.clear()
            last = time.monotonic()
            try:
                await self.tick()
            except Fenced:
                self._store.step_down("no longer a member of the cluster")
            except ObjectStoreError as exc:
                log.warning("cluster tick failed; retrying error=%s", exc)
            except Exception:
                log.exception("cluster tick error; retrying")

    async def tick(self) -> None:
        store = self._store
        await store.meta.catch_up()
        if not self.is_member(store.meta.state):
            store.step_down("fenced in the metadata log by another broker")
            return
        self._answer_probe()
        for victim, seq in await self._silent_members():
            try:
                await self.take_over(victim, to_self=False, expect_seq=seq)
            except WriterAlive:
                log.info("stream moved while sealing; its broker is alive stream=%s", victim)
                self._seen[victim].at = time.monotonic()
        await self.claim_ownerless()
        await self.adopt_assigned()
        await self.hand_off()
        store.sync_partitions()
        self._maybe_heartbeat()

    async def _silent_members(self) -> list[tuple[str, int]]:
        """Probe each other member's stream; those silent for the session timeout."""
        store = self._store
        now = time.monotonic()
        silent = []
        for stream in list(store.meta.state.members):
            if stream == self.me:
                continue
            seen = self._seen.get(stream)
            layout = paths.stream_layout(stream)
            start_after = seen.last_key if seen is not None else None
            infos = await store.store.list(layout.log_prefix, start_after=start_after)
            if infos:
                key = infos[-1].key
                self._seen[stream] = _Seen(key, layout.parse_commit_key(key), now)
            elif seen is None:
                self._seen[stream] = _Seen(None, -1, now)
            else:
                member = store.meta.state.members[stream]
                timeout = max(store.lease_s, member.session_timeout_ms / 1000)
                if now - seen.at <= timeout:
                    continue
                if member.durability == "wal" and store.config.wal_failover == "wait":
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

    def _answer_probe(self) -> None:
        """A broker about to start with our node id rang: commit now, so it sees us alive
        and refuses to start (instead of fencing us after our silence)."""
        probe = self._store.meta.state.probes.get(self._store.config.node_id, -1)
        if probe <= self._answered_probe:
            return
        self._answered_probe = probe
        log.warning(
            "another broker is starting with our node id; answering its probe so it "
            "refuses to start node=%d probe_seq=%d",
            self._store.config.node_id,
            probe,
        )
        self.renew_lease()

    def _maybe_heartbeat(self) -> None:
        """An empty commit when idle and watched: it tells the others we are alive.

        A broker alone in the cluster stays silent when idle (no object per second in an
        idle bucket); its wal-mode lease is renewed on demand, by the next ack."""
        store = self._store
        idle = time.monotonic() - (store.lease_until - store.lease_s)
        if idle >= store.lease_s / 4 and len(store.meta.state.members) > 1:
            self.renew_lease()

    def renew_lease(self) -> None:
        """Commit now (an empty commit if nothing waits), unless one is on its way."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        with contextlib.suppress(Fenced):  # the flusher reports fencing itself
            await self._store.flusher.commit_ops([])

    # -- hand-off and leave ------------------------------------------------------------

    async def hand_off(self) -> None:
        """Give keys whose preferred owner is another live broker to that broker."""
        store = self._store
        live = self.alive()
        if len(live) < 2:
            return
        moves: dict[PartitionKey, str] = {}
        slots = [(GROUP_TOPIC, s) for s in store.stream.state.slots]
        for key in list(store.partitions) + slots:
            if not store.serves(key):
                continue
            preferred = preferred_owner(key, live)
            if preferred is not None and preferred.stream != self.me:
                moves[key] = preferred.stream
        if moves:
            await self._move(moves, "handed over")

    async def _move(self, moves: dict[PartitionKey, str], why: str) -> None:
        store = self._store
        store.moving |= set(moves)
        try:
            if await store.flush_once() is None and store.unflushed_bytes():
                log.warning("hand-off postponed: upload failed keys=%d", len(moves))
                return
            seq = store.stream.state.seq
            rows = [[k[0], k[1], to, self.me, seq] for k, to in moves.items()]
            await store.meta.append(ops=[{"op": "assign", "owners": rows}], guard=self.is_member)
        finally:
            store.moving -= set(moves)
            store.sync_partitions()
        log.info("%s keys count=%d to=%s", why, len(moves), ",".join(sorted(set(moves.values()))))

    async def leave(self) -> None:
        """Clean shutdown: seal our own stream, hand every key on, leave the cluster."""
        store = self._store
        self.leaving = True
        try:
            seal_seq = await store.stream_ops([{"op": "seal", "by": self.me}])

            def ops(meta: MetaState) -> list[dict[str, Any]]:
                others = [m for m in self.alive() if m.stream != self.me]
                rows = []
                for key, owner in meta.owners.items():
                    target = preferred_owner(key, others)
                    if owner.stream == self.me and target is not None:
                        rows.append([key[0], key[1], target.stream, self.me, seal_seq])
                leave = {"op": "leave", "stream": self.me, "seal_seq": seal_seq}
                return [{"op": "assign", "owners": rows}, leave]

            await store.meta.append(ops=ops, guard=self.is_member)
            log.info("left the cluster stream=%s sealed_at=%d", self.me, seal_seq)
        except (Fenced, ObjectStoreError, Exception) as exc:
            log.warning(
                "could not leave cleanly; others take over after the session timeout error=%s", exc
            )

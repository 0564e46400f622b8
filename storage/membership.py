"""This broker's part in the cluster: join, take over, adopt, hand off, watch, leave.

Owns: the start-up takeovers (the stream whose WAL we were handed, dead incarnations
of our node id, `--replace` nodes), the background tick (fold the metadata log, answer
a probe for our node id, fence members silent for their session timeout, claim
ownerless keys, adopt what was assigned to us, hand keys to the broker they belong
to), heartbeats when idle, and the clean leave. Its parts: storage/node_id_check.py
(the start-up check that no live broker has our node id), storage/liveness.py (who is
alive), storage/adoption.py (taking keys up). It sees the broker's storage only
through `MemberStorage` (storage/member_storage.py), and time only through its clock.
Everything goes through the bucket: no other channel exists.

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
import logging
from typing import Any

from tidelog.storage.adoption import Adoption
from tidelog.storage.commit_log import Fenced
from tidelog.storage.liveness import Liveness
from tidelog.storage.member_storage import MemberStorage
from tidelog.storage.meta_state import GROUP_TOPIC, Member, MetaState
from tidelog.storage.node_id_check import NodeIdCheck, NodeIdInUse
from tidelog.storage.object_store import ObjectStoreError
from tidelog.storage.ownership import WriterAlive, preferred_owner, seal_stream
from tidelog.storage.stream_state import PartitionKey

__all__ = ["Membership", "NodeIdInUse"]

log = logging.getLogger(__name__)

_MIN_TICK_S = 0.1


def _owner_seq(meta: MetaState, key: PartitionKey, previous: str) -> int:
    """The tenure `previous` held `key` for, now that it was taken from it (-1 if none)."""
    owner = meta.owners.get(key)
    if owner is None:
        return -1
    if owner.stream == previous:
        return owner.seq
    return next((s.tenure for s in owner.sources if s.stream == previous), -1)


class Membership:
    def __init__(self, store: MemberStorage) -> None:
        self._store = store
        self._liveness = Liveness(store)
        self._adoption = Adoption(store)
        self._node_id_check = NodeIdCheck(store)
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[Any] | None = None
        self._poked = asyncio.Event()
        self._stopping = False
        self.leaving = False
        self._answered_probe = -1

    # -- helpers -----------------------------------------------------------------------

    @property
    def me(self) -> str:
        return self._store.stream_id

    @property
    def _tick_s(self) -> float:
        return min(1.0, self._store.lease.seconds / 6)

    def is_member(self, state: MetaState) -> bool:
        return self.me in state.members

    def alive(self) -> list[Member]:
        """Members we believe alive: ourselves, and those whose stream moved lately."""
        return self._liveness.alive()

    @property
    def commits_read(self) -> int:
        """Commits read from other brokers' streams (taking over, adopting)."""
        return self._adoption.commits_read

    @property
    def bytes_read(self) -> int:
        return self._adoption.bytes_read

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

    async def join(self) -> int:
        """Join the cluster as a new incarnation of our node id; returns its epoch."""
        store, config = self._store, self._store.config
        join = {
            "op": "join",
            "node": config.node_id,
            "host": config.host,
            "port": config.port,
            "durability": config.durability,
            "session_timeout_ms": config.session_timeout_ms,
        }
        if config.listeners:
            join["listeners"] = [list(listener) for listener in config.listeners]
        epoch = await store.meta.append(ops=[join])
        store.meta.epoch = epoch
        return epoch

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
                wal = m.durability == "wal" and m.stream not in self._node_id_check.silent
                victims[m.stream] = m.session_timeout_ms / 1000 if wal else 0
        self._answered_probe = meta.probes.get(store.config.node_id, -1)
        for stream, lease_s in sorted(victims.items()):
            try:
                await self.take_over(
                    stream, to_self=True, expect_seq=self._node_id_check.silent.get(stream)
                )
            except WriterAlive:
                # It committed after all (a slow answer to our probe): it is alive.
                check = self._node_id_check
                await check.withdraw()
                raise NodeIdInUse(
                    await check.refusal(meta.members[stream], after=check.silent[stream])
                ) from None
            if lease_s:
                log.info(
                    "waiting out the lease of the replaced broker before serving "
                    "stream=%s lease_s=%.1f",
                    stream,
                    lease_s,
                )
                await store.clock.sleep(lease_s)
        await self.claim_ownerless()
        await self.adopt_assigned(first=True)
        return sorted(victims)

    async def ensure_node_id_free(self, wal_owner: str | None) -> None:
        """Before joining: raise NodeIdInUse if a live broker has our node id."""
        await self._node_id_check.ensure_free(wal_owner)

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
            clock_ms=store.clock.wall_ms,
            expect_seq=expect_seq,
        )
        self._adoption.remember_source(victim, sealed)
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
        self._liveness.forget(victim)
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
        """Copy into our stream the state of every key assigned to us, then serve it."""
        await self._adoption.adopt_assigned(first=first)

    # -- the tick ----------------------------------------------------------------------

    def poke(self) -> None:
        """Tick soon: a client asked for a key we do not serve, so the metadata we folded
        may be stale (a key just assigned to us is served only after the next tick)."""
        self._poked.set()

    async def _loop(self) -> None:
        last = 0.0
        while not self._store.fenced and not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with self._store.clock.timeout(self._tick_s):
                    await self._poked.wait()
            if self._stopping:
                return
            # A poke brings the tick forward, but not more often than every 100 ms.
            clock = self._store.clock
            await clock.sleep(max(0.0, last + _MIN_TICK_S - clock.monotonic()))
            self._poked.clear()
            last = clock.monotonic()
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
        for victim, seq in await self._liveness.silent_members():
            try:
                await self.take_over(victim, to_self=False, expect_seq=seq)
            except WriterAlive:
                log.info("stream moved while sealing; its broker is alive stream=%s", victim)
                self._liveness.moved(victim)
        await self.claim_ownerless()
        await self.adopt_assigned()
        await self.hand_off()
        store.sync_partitions()
        self._maybe_heartbeat()

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
        if store.lease.idle_s() >= store.lease.seconds / 4 and len(store.meta.state.members) > 1:
            self.renew_lease()

    def renew_lease(self) -> None:
        """Commit now (an empty commit if nothing waits), unless one is on its way."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        with contextlib.suppress(Fenced):  # the flusher reports fencing itself
            await self._store.commit_now()

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

"""The transaction coordinator's driver: the pure state machine (state.py) put to work.

Owns: one lock per transactional id (its calls run one at a time, in arrival order);
carrying out an `Outcome` in its order: persist `prepare`, write the markers into every
partition and group of the transaction, persist `complete`; the timer that aborts
transactions past their timeout and finishes Prepare* ones found after a crash or a
slot move; and answering verification (KIP-890 part 1) for partition leaders.

Guarantees:
- a call is answered only after what it decided landed in the bucket (the backend's
  `save` returns once committed), so an answered EndTxn survives kill -9;
- a commit decision, once persisted as PrepareCommit, is carried through: EndTxn
  answers then (as Kafka does), and the markers and CompleteCommit follow under the
  id's lock, so the producer's next call waits for them. If a marker cannot be written
  now, the timer keeps writing until every marker is in, then persists the
  completion. Markers are idempotent for partitions and groups alike;
- only the broker coordinating the id's slot acts on it: every call checks
  `coordinates` first and answers NOT_COORDINATOR otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tidelog.broker.transactions import state
from tidelog.broker.transactions.model import TxnMeta, TxnStatus
from tidelog.broker.transactions.state import Markers, Outcome
from tidelog.protocol.errors import ErrorCode

log = logging.getLogger(__name__)

TICK_S = 0.5  # how often timeouts and unfinished transactions are looked at


class MarkerFailed(Exception):
    """A marker could not be written now; the transaction stays in Prepare*."""


class TxnBackend(Protocol):
    """What the coordinator needs of the broker (broker/node.py implements it)."""

    def coordinates_txn(self, transactional_id: str) -> bool: ...
    def load_txn(self, transactional_id: str) -> dict[str, Any] | None: ...
    def served_txns(self) -> dict[str, dict[str, Any]]: ...
    async def save_txn(self, transactional_id: str, meta: dict[str, Any]) -> None: ...
    async def allocate_producer_id(self) -> int: ...
    async def write_markers(self, markers: Markers, coordinator_epoch: int) -> None:
        """Write every marker; raise MarkerFailed if one cannot be written now."""
        ...

    def coordinator_epoch(self, transactional_id: str) -> int: ...


class TxnCoordinator:
    def __init__(
        self,
        backend: TxnBackend,
        *,
        max_timeout_ms: int,
        clock_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._backend = backend
        self.max_timeout_ms = max_timeout_ms
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()  # EndTxn's markers, in flight
        self._closed = False

    # -- what clients call -------------------------------------------------------------

    async def init_producer(
        self, transactional_id: str, timeout_ms: int, producer_id: int, producer_epoch: int
    ) -> Outcome:
        async with self._guard(transactional_id) as (here, current):
            if not here:
                return Outcome(ErrorCode.not_coordinator)
            new_pid = -1
            if state.needs_producer_id(current):
                new_pid = await self._backend.allocate_producer_id()
            outcome = state.init_producer(
                current,
                transactional_id=transactional_id,
                timeout_ms=timeout_ms,
                max_timeout_ms=self.max_timeout_ms,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                new_producer_id=new_pid,
                now_ms=self._clock_ms(),
            )
            code = await self._carry_out(transactional_id, outcome)
            if code != ErrorCode.none:
                return Outcome(code)
            return outcome

    async def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: frozenset[tuple[str, int]],
    ) -> ErrorCode:
        return await self._step(
            transactional_id,
            lambda meta, now: state.add_partitions(
                meta,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                partitions=partitions,
                now_ms=now,
            ),
        )

    async def add_group(
        self, transactional_id: str, producer_id: int, producer_epoch: int, group: str
    ) -> ErrorCode:
        return await self._step(
            transactional_id,
            lambda meta, now: state.add_group(
                meta,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                group=group,
                now_ms=now,
            ),
        )

    async def _step(
        self, transactional_id: str, decide: Callable[[TxnMeta | None, int], Outcome]
    ) -> ErrorCode:
        """One call on the id's state, under its lock, carried out before it answers."""
        async with self._guard(transactional_id) as (here, meta):
            if not here:
                return ErrorCode.not_coordinator
            return await self._carry_out(transactional_id, decide(meta, self._clock_ms()))

    async def end_txn(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> ErrorCode:
        """Answered once the decision (Prepare*) is in the bucket, as Kafka answers it;
        the markers and the completion follow in the background, still holding the id's
        lock, so the producer's next call waits for them (docs/transactions.md)."""
        lock = self._lock(transactional_id)
        await lock.acquire()
        handed_over = False
        try:
            here, meta = self._current(transactional_id)
            if not here:
                return ErrorCode.not_coordinator
            outcome = state.end_txn(
                meta,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                commit=commit,
                now_ms=self._clock_ms(),
            )
            if outcome.error != ErrorCode.none or outcome.prepare is None:
                return await self._carry_out(transactional_id, outcome)
            await self._backend.save_txn(transactional_id, outcome.prepare.to_json())
            rest = Outcome(markers=outcome.markers, complete=outcome.complete)
            task = asyncio.get_running_loop().create_task(
                self._finish(transactional_id, rest, lock)
            )
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
            handed_over = True
            return ErrorCode.none
        finally:
            if not handed_over:
                lock.release()

    async def _finish(self, transactional_id: str, rest: Outcome, lock: asyncio.Lock) -> None:
        """Markers and completion of a decided transaction; the timer retries what fails."""
        try:
            await self._carry_out(transactional_id, rest)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the decision is in the bucket: the timer finishes it
            log.warning(
                "transaction not completed yet; the timer retries transactional_id=%s reason=%r",
                transactional_id,
                exc,
            )
        finally:
            lock.release()

    def verify(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        *,
        partition: tuple[str, int] | None = None,
        group: str | None = None,
    ) -> ErrorCode:
        """For a partition leader about to open a transaction in `partition` (KIP-890
        part 1), or a group coordinator staging offsets for `group`."""
        if not self._backend.coordinates_txn(transactional_id):
            return ErrorCode.not_coordinator
        return state.verify(
            self.meta(transactional_id),
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            partition=partition,
            group=group,
        )

    async def settled(self) -> None:
        """Until every transaction EndTxn answered has its markers and completion (tests
        and shutdown wait on this; clients see it as their next call waiting)."""
        while self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    # -- inspection --------------------------------------------------------------------

    def meta(self, transactional_id: str) -> TxnMeta | None:
        raw = self._backend.load_txn(transactional_id)
        return TxnMeta.from_json(raw) if raw is not None else None

    def served(self) -> list[TxnMeta]:
        """Every transactional id this broker coordinates now."""
        return [TxnMeta.from_json(raw) for raw in self._backend.served_txns().values()]

    # -- the timer ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop the timer and whatever EndTxn left running: a transaction it leaves in
        Prepare* is finished by the next owner of its slot."""
        self._closed = True
        for task in list(self._finishing):
            task.cancel()
        for task in list(self._finishing):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._closed:
            await self._sleep(TICK_S)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop timeouts for good
                log.exception("transaction timer tick failed")

    async def tick(self) -> None:
        """Abort what timed out; finish what a crash or a move left in Prepare*."""
        now = self._clock_ms()
        for txn_id, raw in list(self._backend.served_txns().items()):
            meta = TxnMeta.from_json(raw)
            due = state.deadline_ms(meta)
            if meta.status.is_prepare or (due is not None and due < now):
                await self._advance(txn_id)

    async def _advance(self, transactional_id: str) -> None:
        async with self._guard(transactional_id) as (_, meta):
            if meta is None:
                return
            outcome = state.recover(meta) or state.expire(meta, self._clock_ms())
            if outcome is None:
                return
            if outcome.prepare is not None:
                log.info(
                    "transaction timed out; aborting transactional_id=%s producer_id=%d "
                    "epoch=%d timeout_ms=%d",
                    transactional_id,
                    meta.producer_id,
                    meta.producer_epoch,
                    meta.timeout_ms,
                )
            await self._carry_out(transactional_id, outcome)

    # -- carrying out ------------------------------------------------------------------

    def _lock(self, transactional_id: str) -> asyncio.Lock:
        return self._locks.setdefault(transactional_id, asyncio.Lock())

    def _guard(self, transactional_id: str) -> _Guard:
        return _Guard(self, transactional_id, self._lock(transactional_id))

    def _current(self, transactional_id: str) -> tuple[bool, TxnMeta | None]:
        """(whether we coordinate the id now, its state if we do and it has one)."""
        if not self._backend.coordinates_txn(transactional_id):
            return False, None
        return True, self.meta(transactional_id)

    async def _carry_out(self, transactional_id: str, outcome: Outcome) -> ErrorCode:
        if outcome.error != ErrorCode.none:
            return outcome.error
        backend = self._backend
        if outcome.prepare is not None:
            await backend.save_txn(transactional_id, outcome.prepare.to_json())
        if outcome.markers is not None:
            try:
                await backend.write_markers(
                    outcome.markers, backend.coordinator_epoch(transactional_id)
                )
            except MarkerFailed as exc:
                log.warning(
                    "transaction markers not all written yet; retrying "
                    "transactional_id=%s reason=%s",
                    transactional_id,
                    exc,
                )
                return ErrorCode.concurrent_transactions
        if outcome.complete is not None:
            await backend.save_txn(transactional_id, outcome.complete.to_json())
            if outcome.markers is not None:
                log.debug(
                    "transaction ended transactional_id=%s status=%s",
                    transactional_id,
                    outcome.complete.status.value,
                )
        return ErrorCode.none


class _Guard:
    """`async with`: the id's lock, yielding (coordinated here, its state)."""

    def __init__(self, owner: TxnCoordinator, transactional_id: str, lock: asyncio.Lock) -> None:
        self._owner = owner
        self._id = transactional_id
        self._lock = lock

    async def __aenter__(self) -> tuple[bool, TxnMeta | None]:
        await self._lock.acquire()
        return self._owner._current(self._id)

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


__all__ = ["MarkerFailed", "TxnBackend", "TxnCoordinator", "TxnStatus"]

"""aiokafka and kafka-python as `Kit`s for the transaction tests (see txn_clients.py).

Owns: each client's transactional producer, assigned reader and subscribed group
consumer, through its own API (aiokafka: `start` is its init and sends InitProducerId,
`send_offsets_to_transaction` takes the group id; kafka-python 3: `init_transactions`,
`send_offsets_to_transaction` with the consumer's `group_metadata()`). aiokafka's
objects live on one event loop per kit (an asyncio.Runner), closed with the kit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from tests.integration.txn_clients import (
    HEARTBEAT_MS,
    SESSION_MS,
    WAIT_S,
    Group,
    Kit,
    Producer,
    Reader,
    named,
)

T = TypeVar("T")
POLL_MS = 200
LINGER_MS = 5

# -- aiokafka --------------------------------------------------------------------------


class AioKit(Kit):
    name = "aiokafka"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self.runner = asyncio.Runner()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(asyncio.wait_for(coro, WAIT_S))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the kit's loop (aiokafka's assign and seek need one running)."""

        async def on_loop() -> T:
            return fn(*args)

        return self.run(on_loop())

    def producer(self, txn_id: str | None, timeout_ms: int | None = None) -> Producer:
        return self._open(AioProducer(self, txn_id, timeout_ms))

    def reader(self, topic: str, partition: int, *, committed: bool) -> Reader:
        return self._open(AioReader(self, topic, partition, committed))

    def group(self, group_id: str, topic: str) -> Group:
        return self._open(AioGroup(self, group_id, topic))

    def fenced(self, exc: BaseException) -> bool:
        return named(exc, ("ProducerFenced", "InvalidProducerEpoch"))

    def bad_timeout(self, exc: BaseException) -> bool:
        return named(exc, ("InvalidTransactionTimeout",))

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.runner.close()


class AioProducer(Producer):
    def __init__(self, kit: AioKit, txn_id: str | None, timeout_ms: int | None) -> None:
        from aiokafka import AIOKafkaProducer

        self.kit = kit
        conf: dict[str, Any] = {"linger_ms": LINGER_MS}
        if txn_id is not None:
            conf["transactional_id"] = txn_id
        if timeout_ms is not None:
            conf["transaction_timeout_ms"] = timeout_ms

        async def make() -> Any:
            return AIOKafkaProducer(bootstrap_servers=kit.bootstrap, **conf)

        self.client = kit.run(make())
        self.pending: list[asyncio.Future[Any]] = []
        if txn_id is None:
            self.init()

    def init(self) -> None:
        self.kit.run(self.client.start())

    def begin(self) -> None:
        self.kit.run(self.client.begin_transaction())

    def send(self, topic: str, partition: int, value: bytes) -> None:
        self.pending.append(self.kit.run(self.client.send(topic, value, partition=partition)))

    def flush(self) -> None:
        pending, self.pending = self.pending, []

        async def wait() -> list[Any]:
            return await asyncio.gather(*pending, return_exceptions=True)

        # every outcome is retrieved, so none is logged as never retrieved later
        errors = [r for r in self.kit.run(wait()) if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    def send_offsets(self, offsets: Mapping[tuple[str, int], int], group: Group) -> None:
        from aiokafka.structs import TopicPartition

        tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
        self.kit.run(self.client.send_offsets_to_transaction(tps, group.group_id))

    def commit(self) -> None:
        self.kit.run(self.client.commit_transaction())

    def abort(self) -> None:
        self.kit.run(self.client.abort_transaction())

    def close(self) -> None:
        for future in self.pending:  # sends no flush waited for
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.kit.run(self.client.stop())


def _aio_consumer(kit: AioKit, *topics: str, **conf: Any) -> Any:
    from aiokafka import AIOKafkaConsumer

    async def make() -> Any:
        consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=kit.bootstrap, enable_auto_commit=False, **conf
        )
        await consumer.start()
        return consumer

    return kit.run(make())


class AioReader(Reader):
    def __init__(self, kit: AioKit, topic: str, partition: int, committed: bool) -> None:
        from aiokafka.structs import TopicPartition

        super().__init__()
        self.kit, self.committed, self.tp = kit, committed, TopicPartition(topic, partition)
        isolation = "read_committed" if committed else "read_uncommitted"
        self.client = _aio_consumer(kit, isolation_level=isolation)
        kit.call(self.client.assign, [self.tp])
        kit.call(self.client.seek, self.tp, 0)

    def poll(self) -> None:
        batch = self.kit.run(self.client.getmany(self.tp, timeout_ms=POLL_MS))
        self.records += [(r.offset, r.value) for r in batch.get(self.tp, [])]

    def end_offset(self) -> int:
        return int(self.kit.run(self.client.end_offsets([self.tp]))[self.tp])

    def fetched_to(self, highwater: int) -> bool:
        # aiokafka learns the marks when a fetch lands and moves the position as its
        # records are handed out: at the fetch's end (LSO or HW), all were handed out.
        seen = self.client.highwater(self.tp)
        end = self.client.last_stable_offset(self.tp) if self.committed else seen
        position = self.kit.run(self.client.position(self.tp))
        return seen is not None and seen >= highwater and position >= end

    def close(self) -> None:
        self.kit.run(self.client.stop())


class AioGroup(Group):
    def __init__(self, kit: AioKit, group_id: str, topic: str) -> None:
        super().__init__(group_id, topic)
        self.kit = kit
        self.client = _aio_consumer(
            kit,
            topic,
            group_id=group_id,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )

    def poll(self) -> None:
        batch = self.kit.run(self.client.getmany(timeout_ms=POLL_MS))
        self.pending += [(r.offset, r.value) for rs in batch.values() for r in rs]

    def seek_client(self, partition: int, offset: int) -> None:
        from aiokafka.structs import TopicPartition

        self.kit.call(self.client.seek, TopicPartition(self.topic, partition), offset)

    def committed(self, partition: int) -> int | None:
        from aiokafka.structs import TopicPartition

        found = self.kit.run(self.client.committed(TopicPartition(self.topic, partition)))
        return None if found is None else int(found)

    def close(self) -> None:
        self.kit.run(self.client.stop())


# -- kafka-python ----------------------------------------------------------------------


class KpKit(Kit):
    name = "kafka-python"

    def producer(self, txn_id: str | None, timeout_ms: int | None = None) -> Producer:
        return self._open(KpProducer(self.bootstrap, txn_id, timeout_ms))

    def reader(self, topic: str, partition: int, *, committed: bool) -> Reader:
        return self._open(KpReader(self.bootstrap, topic, partition, committed))

    def group(self, group_id: str, topic: str) -> Group:
        return self._open(KpGroup(self.bootstrap, group_id, topic))

    # kafka-python wraps some broker errors in a KafkaError that only names them.
    def fenced(self, exc: BaseException) -> bool:
        names = ("ProducerFencedError", "InvalidProducerEpochError")
        return named(exc, names) or any(name in str(exc) for name in names)

    def bad_timeout(self, exc: BaseException) -> bool:
        name = "InvalidTransactionTimeoutError"
        return named(exc, (name,)) or name in str(exc)


class KpProducer(Producer):
    def __init__(self, bootstrap: str, txn_id: str | None, timeout_ms: int | None) -> None:
        from kafka import KafkaProducer

        conf: dict[str, Any] = {"linger_ms": LINGER_MS, "max_block_ms": int(WAIT_S * 1000)}
        if txn_id is not None:
            conf["transactional_id"] = txn_id
        if timeout_ms is not None:
            conf["transaction_timeout_ms"] = timeout_ms
        self.client = KafkaProducer(bootstrap_servers=bootstrap, **conf)
        self.pending: list[Any] = []

    def init(self) -> None:
        self.client.init_transactions()

    def begin(self) -> None:
        self.client.begin_transaction()

    def send(self, topic: str, partition: int, value: bytes) -> None:
        self.pending.append(self.client.send(topic, value=value, partition=partition))

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        self.client.flush(WAIT_S)
        for future in pending:
            future.get(WAIT_S)  # raises the send's error

    def send_offsets(self, offsets: Mapping[tuple[str, int], int], group: Group) -> None:
        from kafka import OffsetAndMetadata, TopicPartition

        assert isinstance(group, KpGroup)
        tps = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        self.client.send_offsets_to_transaction(tps, group.client.group_metadata())

    def commit(self) -> None:
        self.client.commit_transaction()

    def abort(self) -> None:
        self.client.abort_transaction()

    def close(self) -> None:
        self.client.close(timeout=WAIT_S)


class KpReader(Reader):
    def __init__(self, bootstrap: str, topic: str, partition: int, committed: bool) -> None:
        from kafka import KafkaConsumer, TopicPartition

        super().__init__()
        self.tp = TopicPartition(topic, partition)
        isolation = "read_committed" if committed else "read_uncommitted"
        self.client = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation
        )
        self.client.assign([self.tp])
        self.client.seek(self.tp, 0)

    def poll(self) -> None:
        for records in self.client.poll(timeout_ms=POLL_MS).values():
            self.records += [(r.offset, r.value) for r in records]

    def end_offset(self) -> int:
        return int(self.client.end_offsets([self.tp])[self.tp])

    def fetched_to(self, highwater: int) -> bool:
        # kafka-python learns the high watermark as it parses a fetch, and the same
        # poll hands out that fetch's records (far fewer than max_poll_records here).
        seen = self.client.highwater(self.tp)
        return seen is not None and seen >= highwater

    def close(self) -> None:
        self.client.close()


class KpGroup(Group):
    def __init__(self, bootstrap: str, group_id: str, topic: str) -> None:
        from kafka import KafkaConsumer

        super().__init__(group_id, topic)
        self.client = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )

    def poll(self) -> None:
        for records in self.client.poll(timeout_ms=POLL_MS).values():
            self.pending += [(r.offset, r.value) for r in records]

    def seek_client(self, partition: int, offset: int) -> None:
        from kafka import TopicPartition

        self.client.seek(TopicPartition(self.topic, partition), offset)

    def committed(self, partition: int) -> int | None:
        from kafka import TopicPartition

        found = self.client.committed(TopicPartition(self.topic, partition))
        return None if found is None else int(found)

    def close(self) -> None:
        self.client.close()

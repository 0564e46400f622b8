"""The three Kafka clients behind one small interface, for the transaction tests
(tests/integration/test_transactions.py); here the interface and confluent-kafka,
aiokafka and kafka-python in txn_clients_py.py.

Owns: per client a `Kit` that opens a `Producer` (transactional or plain: init, begin,
send, flush, send offsets, commit, abort), a `Reader` (one partition, assigned, from
offset 0, one isolation level: records as the client hands them out, ListOffsets
LATEST, and all a fetch that saw high watermark N handed out) and a `Group` consumer
(subscribed, no auto commit: take records, seek, the group's committed offset). Each
step calls the client's own API; errors are the client's own exceptions, which
`Kit.fenced` and `Kit.bad_timeout` classify.
Guarantees: every wait polls a condition until its deadline (WAIT_S unless given), then
raises TimeoutError saying what it waited for and what it had; `Kit.close` closes all
the kit opened, even when closing one fails (that error is raised after).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

WAIT_S = 30.0
POLL_S = 0.2
Record = tuple[int, bytes]  # (offset, value) of a delivered data record
Until = Callable[[list[Record]], bool]
# Fast, deterministic group membership (6 s is tidelog's minimum session timeout).
SESSION_MS, HEARTBEAT_MS = 6000, 500


def poll_until(
    what: str, step: Callable[[], bool], seconds: float = WAIT_S, have: Callable[[], object] = str
) -> None:
    """Call `step` (which polls a client once) until it returns True; TimeoutError after,
    saying `what` it waited for and what it `have` at the end."""
    deadline = time.monotonic() + seconds
    while not step():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:g} s; have {have()}")


T = TypeVar("T")


class Producer(ABC):
    """A producer; transactional ones need `init` first, plain ones only send and flush."""

    @abstractmethod
    def init(self) -> None: ...
    @abstractmethod
    def begin(self) -> None: ...
    @abstractmethod
    def send(self, topic: str, partition: int, value: bytes) -> None: ...
    @abstractmethod
    def flush(self) -> None: ...  # every record sent is acknowledged, or it raises
    @abstractmethod
    def send_offsets(self, offsets: Mapping[tuple[str, int], int], group: Group) -> None: ...
    @abstractmethod
    def commit(self) -> None: ...
    @abstractmethod
    def abort(self) -> None: ...
    @abstractmethod
    def close(self) -> None: ...


class Reader(ABC):
    """One partition, assigned (no group), read from offset 0 at one isolation level."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    @abstractmethod
    def poll(self) -> None: ...  # one poll, appending to self.records
    @abstractmethod
    def end_offset(self) -> int: ...  # ListOffsets LATEST at this reader's isolation
    @abstractmethod
    def fetched_to(self, highwater: int) -> bool: ...  # see read_fetch
    @abstractmethod
    def close(self) -> None: ...

    def read(self, until: Until, what: str = "records", seconds: float = WAIT_S) -> list[Record]:
        """Poll until `until(records so far)` holds; all records so far."""
        step = lambda: self._poll() and until(self.records)  # noqa: E731
        poll_until(what, step, seconds, lambda: self.records)
        return self.records

    def read_fetch(self, highwater: int) -> list[Record]:
        """Poll until the client has handed out all of a fetch answered while the
        partition's high watermark was `highwater` or more; the records so far. So the
        broker's answer, not a wait for time, decides what a stalled consumer saw."""
        what = f"a fetch seeing high watermark {highwater}"
        poll_until(
            what, lambda: self._poll() and self.fetched_to(highwater), have=lambda: self.records
        )
        return self.records

    def _poll(self) -> bool:
        self.poll()
        return True


class Group(ABC):
    """A consumer subscribed to `topic` in a group, read_committed, committing nothing.
    `poll` appends to `pending`, what `take` hands out next in the order received."""

    def __init__(self, group_id: str, topic: str) -> None:
        self.group_id = group_id
        self.topic = topic
        self.pending: list[Record] = []

    @abstractmethod
    def poll(self) -> None: ...
    @abstractmethod
    def seek_client(self, partition: int, offset: int) -> None: ...
    @abstractmethod
    def committed(self, partition: int) -> int | None: ...  # the group's, by OffsetFetch
    @abstractmethod
    def close(self) -> None: ...

    def take(self, count: int) -> list[Record]:
        """The next `count` records, polling until they arrived."""

        def step() -> bool:
            if len(self.pending) < count:
                self.poll()
            return len(self.pending) >= count

        poll_until(f"{count} records of {self.topic}", step, have=lambda: self.pending)
        taken, self.pending = self.pending[:count], self.pending[count:]
        return taken

    def seek(self, partition: int, offset: int) -> None:
        """Read from `offset` next; records received but not taken are dropped."""
        self.pending.clear()
        self.seek_client(partition, offset)


class Kit(ABC):
    """One client library: opens producers, readers and group consumers; closes them."""

    name = ""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.opened: list[Producer | Reader | Group] = []

    def _open(self, obj: T) -> T:
        self.opened.append(obj)  # type: ignore[arg-type]
        return obj

    @abstractmethod
    def producer(self, txn_id: str | None, timeout_ms: int | None = None) -> Producer: ...
    @abstractmethod
    def reader(self, topic: str, partition: int, *, committed: bool) -> Reader: ...
    @abstractmethod
    def group(self, group_id: str, topic: str) -> Group: ...
    @abstractmethod
    def fenced(self, exc: BaseException) -> bool: ...  # ProducerFenced/INVALID_PRODUCER_EPOCH
    @abstractmethod
    def bad_timeout(self, exc: BaseException) -> bool: ...  # INVALID_TRANSACTION_TIMEOUT

    def close_one(self, obj: Producer | Reader | Group) -> None:
        """Close `obj` now (the kit will not close it again)."""
        self.opened.remove(obj)
        obj.close()

    def close(self) -> None:
        failed: Exception | None = None
        while self.opened:
            try:
                self.opened.pop().close()
            except Exception as exc:
                failed = failed or exc
        if failed is not None:
            raise failed


def named(exc: BaseException | None, names: tuple[str, ...]) -> bool:
    """Whether `exc` or an exception it came from is of a class named in `names`."""
    while exc is not None:
        if type(exc).__name__ in names:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# -- confluent-kafka (librdkafka) ------------------------------------------------------


class RdkKit(Kit):
    name = "confluent"

    def producer(self, txn_id: str | None, timeout_ms: int | None = None) -> Producer:
        return self._open(RdkProducer(self.bootstrap, txn_id, timeout_ms))

    def reader(self, topic: str, partition: int, *, committed: bool) -> Reader:
        return self._open(RdkReader(self.bootstrap, topic, partition, committed))

    def group(self, group_id: str, topic: str) -> Group:
        return self._open(RdkGroup(self.bootstrap, group_id, topic))

    def fenced(self, exc: BaseException) -> bool:
        from confluent_kafka import KafkaError, KafkaException

        fencing = (
            KafkaError._FENCED,
            KafkaError.PRODUCER_FENCED,
            KafkaError.INVALID_PRODUCER_EPOCH,
        )
        return isinstance(exc, KafkaException) and exc.args[0].code() in fencing

    def bad_timeout(self, exc: BaseException) -> bool:
        from confluent_kafka import KafkaError, KafkaException

        code = KafkaError.INVALID_TRANSACTION_TIMEOUT
        return isinstance(exc, KafkaException) and exc.args[0].code() == code


class RdkProducer(Producer):
    def __init__(self, bootstrap: str, txn_id: str | None, timeout_ms: int | None) -> None:
        from confluent_kafka import Producer as CProducer

        conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "linger.ms": 5}
        if txn_id is not None:
            conf["transactional.id"] = txn_id
        if timeout_ms is not None:
            conf["transaction.timeout.ms"] = timeout_ms
        self.client = CProducer(conf)
        self.errors: list[Any] = []

    def init(self) -> None:
        self.client.init_transactions(WAIT_S)

    def begin(self) -> None:
        self.client.begin_transaction()

    def send(self, topic: str, partition: int, value: bytes) -> None:
        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                self.errors.append(err)

        self.client.produce(topic, value=value, partition=partition, on_delivery=delivered)

    def flush(self) -> None:
        from confluent_kafka import KafkaError, KafkaException

        assert self.client.flush(WAIT_S) == 0, "records still undelivered"
        # librdkafka purges what a failed transaction still queued; commit says why
        errors = [e for e in self.errors if e.code() != KafkaError._PURGE_QUEUE]
        if errors:
            raise KafkaException(errors[0])

    def send_offsets(self, offsets: Mapping[tuple[str, int], int], group: Group) -> None:
        from confluent_kafka import TopicPartition

        assert isinstance(group, RdkGroup)
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        meta = group.client.consumer_group_metadata()
        self.client.send_offsets_to_transaction(tps, meta, WAIT_S)

    def commit(self) -> None:
        self.client.commit_transaction(WAIT_S)

    def abort(self) -> None:
        self.client.abort_transaction(WAIT_S)

    def close(self) -> None:
        # Not Producer.close(): it aborts an open transaction (the timeout test needs it
        # left open) and hangs on a fenced producer. Destroying the handle does neither.
        client, self.client = self.client, None
        del client


def _rdk_consumer(bootstrap: str, group_id: str, committed: bool) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        }
    )


class RdkReader(Reader):
    def __init__(self, bootstrap: str, topic: str, partition: int, committed: bool) -> None:
        from confluent_kafka import TopicPartition

        super().__init__()
        self.tp = TopicPartition(topic, partition, 0)
        self.client = _rdk_consumer(bootstrap, "txn-tests-reader", committed)
        self.client.assign([self.tp])
        self.eof_highwater = -1  # the high watermark known at the last end-of-partition

    def poll(self) -> None:
        from confluent_kafka import KafkaError, KafkaException

        msg = self.client.poll(POLL_S)
        if msg is None:
            return
        if msg.error() is None:
            self.records.append((msg.offset(), msg.value()))
        elif msg.error().code() == KafkaError._PARTITION_EOF:
            self.eof_highwater = self.client.get_watermark_offsets(self.tp, cached=True)[1]
        else:
            raise KafkaException(msg.error())

    def end_offset(self) -> int:
        return int(self.client.get_watermark_offsets(self.tp, WAIT_S, cached=False)[1])

    def fetched_to(self, highwater: int) -> bool:
        # librdkafka queues a fetch's records before the end-of-partition event it caused.
        return self.eof_highwater >= highwater

    def close(self) -> None:
        self.client.close()


class RdkGroup(Group):
    def __init__(self, bootstrap: str, group_id: str, topic: str) -> None:
        super().__init__(group_id, topic)
        self.client = _rdk_consumer(bootstrap, group_id, True)
        self.client.subscribe([topic])

    def poll(self) -> None:
        from confluent_kafka import KafkaError, KafkaException

        msg = self.client.poll(POLL_S)
        if msg is None:
            return
        if msg.error() is None:
            self.pending.append((msg.offset(), msg.value()))
        elif msg.error().code() != KafkaError._PARTITION_EOF:
            raise KafkaException(msg.error())

    def seek_client(self, partition: int, offset: int) -> None:
        from confluent_kafka import TopicPartition

        self.client.seek(TopicPartition(self.topic, partition, offset))

    def committed(self, partition: int) -> int | None:
        from confluent_kafka import TopicPartition

        tp = self.client.committed([TopicPartition(self.topic, partition)], WAIT_S)[0]
        return int(tp.offset) if tp.offset >= 0 else None

    def close(self) -> None:
        self.client.close()

"""Transactions across kill -9, restarts and a coordinator moving between brokers.

librdkafka transactional producers against real broker processes (issue 13):
- a committed transaction survives kill -9 and a restart on the same data dir, in both
  durability modes: its records are read_committed, the group offsets it carried
  (send_offsets_to_transaction) are committed;
- a transaction left open by kill -9 is aborted by the restarted broker once its
  timeout passed; until then read_committed consumers are held at its first offset (the
  LSO), afterwards they never see its records nor its offsets, and the transactional id
  goes on with a new epoch (the old producer is fenced);
- a new producer with the id, started before that timeout, aborts it instead: its
  InitProducerId is answered only once no transaction is open any more;
- on two brokers sharing a bucket a transaction spans partitions of both (the remote
  markers go by WriteTxnMarkers); when a broker leaves between produce and commit
  (SIGTERM or kill -9; the coordinator, whose id then moves to the other broker, or the
  other one, whose partitions move) that transaction ends up all or nothing, never
  open, and the id goes on at the survivor.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tests.integration.test_clients import create_topic, topic_name
from tests.integration.test_cluster import bootstrap, leaders, wait_until
from tests.integration.test_group_failover import committed
from tidelog.protocol.messages import build

pytestmark = pytest.mark.integration

TXN_TIMEOUT_MS = 5000
DEADLINE_S = 60.0
PARTITIONS = 2
PER_PARTITION = 5
FENCED = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


# -- clients ---------------------------------------------------------------------------


def txn_producer(boot: str, txn_id: str, timeout_ms: int = TXN_TIMEOUT_MS) -> Producer:
    return Producer(
        {
            "bootstrap.servers": boot,
            "transactional.id": txn_id,
            "transaction.timeout.ms": timeout_ms,
            "linger.ms": 5,
            "reconnect.backoff.max.ms": 200,
        }
    )


def produce_txn_records(
    producer: Producer, topic: str, partitions: int, tag: str
) -> dict[int, list[int]]:
    """Produces PER_PARTITION values `tag-p-i` into each partition and flushes them;
    returns the acknowledged offsets per partition."""
    acked: dict[int, list[int]] = {p: [] for p in range(partitions)}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        offset = msg.offset()
        assert offset is not None
        acked[msg.partition() or 0].append(offset)

    for p in range(partitions):
        for i in range(PER_PARTITION):
            producer.produce(topic, f"{tag}-{p}-{i}".encode(), partition=p, on_delivery=on_delivery)
    assert producer.flush(DEADLINE_S) == 0, "records left unacknowledged"
    assert all(len(v) == PER_PARTITION for v in acked.values()), acked
    return acked


def group_metadata(boot: str, group: str) -> Any:
    consumer = Consumer({"bootstrap.servers": boot, "group.id": group})
    try:
        return consumer.consumer_group_metadata()
    finally:
        consumer.close()


def consumer(boot: str, *, read_committed: bool) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": boot,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            "reconnect.backoff.max.ms": 200,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )


def end_offsets(reader: Consumer, topic: str, partitions: int) -> dict[int, int] | None:
    """Per partition the end offset the reader's isolation level sees (ListOffsets
    LATEST: the LSO read_committed, the high watermark otherwise); None while a
    partition is between brokers or a broker is not answering."""
    out: dict[int, int] = {}
    for p in range(partitions):
        try:
            _, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._TIMED_OUT or exc.args[0].retriable():
                return None
            if exc.args[0].code() in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError._TRANSPORT,
            ):
                return None
            raise
        out[p] = int(high)
    return out


def wait_stable(boot: str, topic: str, partitions: int) -> dict[int, int]:
    """Waits until no transaction is open in any partition (LSO == high watermark);
    returns the high watermarks."""
    committed_reader = consumer(boot, read_committed=True)
    uncommitted_reader = consumer(boot, read_committed=False)
    seen: list[tuple[dict[int, int] | None, dict[int, int] | None]] = []
    try:

        def stable() -> bool:
            hw = end_offsets(uncommitted_reader, topic, partitions)
            lso = end_offsets(committed_reader, topic, partitions)
            seen.append((lso, hw))
            return hw is not None and lso == hw

        try:
            wait_until("LSO to reach the high watermark", stable, timeout=DEADLINE_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last (LSO, HW) {seen[-3:]}") from None
        _, hw = seen[-1]
        assert hw is not None
        return hw
    finally:
        committed_reader.close()
        uncommitted_reader.close()


def read_committed_values(boot: str, topic: str, partitions: int) -> dict[int, list[str]]:
    """Every value read_committed returns, per partition, read from offset 0 until the
    end the consumer is told (partition EOF at the LSO)."""
    reader = consumer(boot, read_committed=True)
    try:
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        values: dict[int, list[str]] = {p: [] for p in range(partitions)}
        at_end: set[int] = set()
        deadline = time.monotonic() + DEADLINE_S
        while at_end != set(range(partitions)):
            assert time.monotonic() < deadline, f"read_committed never reached the end: {values}"
            msg = reader.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition() or 0)
                    continue
                if err.retriable():
                    continue
                raise KafkaException(err)
            value = msg.value()
            assert value is not None
            values[msg.partition() or 0].append(value.decode())
        return values
    finally:
        reader.close()


def expected(tag: str, partitions: int) -> dict[int, list[str]]:
    return {p: [f"{tag}-{p}-{i}" for i in range(PER_PARTITION)] for p in range(partitions)}


def by_tag(values: dict[int, list[str]]) -> dict[str, dict[int, list[str]]]:
    out: dict[str, dict[int, list[str]]] = {}
    for p, vs in values.items():
        for v in vs:
            out.setdefault(v.split("-")[0], {}).setdefault(p, []).append(v)
    return out


# -- raw requests: which broker coordinates a transactional id -----------------------


def find_txn_coordinator(boot: str, txn_id: str) -> int:
    """The node coordinating `txn_id` (FindCoordinator key_type 1)."""
    return find_coordinator(boot, txn_id, key_type=1)


def find_coordinator(boot: str, key: str, *, key_type: int) -> int:
    """The node coordinating `key` (a group for key_type 0, a transactional id for 1),
    retried while its slot is between brokers or a broker does not answer."""
    from kio.index import load_payload_module
    from kio.static.constants import EntityType
    from kio.static.primitive import i8

    module = load_payload_module(10, 4, EntityType.request)
    request = build(
        module, "FindCoordinatorRequest", key_type=i8(key_type), coordinator_keys=(key,)
    )
    last: object = None
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for address in boot.split(","):
            try:
                with RawClient(address, timeout=5) as c:
                    answer = c.request(request).coordinators[0]
            except OSError as exc:
                last = exc
                continue
            if answer.error_code == 0:
                return int(answer.node_id)
            last = answer
        time.sleep(0.2)
    raise AssertionError(f"no coordinator for {key}: {last}")


# -- 1. one broker, kill -9, restart on the same data dir ------------------------------


def broker_args(tmp_path: Path, durability: str) -> list[str]:
    return ["--durability", durability, "--object-store", f"file://{tmp_path / 'bucket'}"]


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_a_committed_transaction_survives_kill_9_and_restart(
    tmp_path: Path, durability: str, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, durability)
    first = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(first)
    topic, group, txn_id = topic_name("txn-kept"), topic_name("g"), topic_name("tx")
    create_topic(first, topic, partitions=PARTITIONS)
    producer = txn_producer(first.bootstrap, txn_id)
    producer.init_transactions(DEADLINE_S)
    producer.begin_transaction()
    produce_txn_records(producer, topic, PARTITIONS, "kept")
    offsets = [TopicPartition(topic, p, 40 + p) for p in range(PARTITIONS)]
    producer.send_offsets_to_transaction(offsets, group_metadata(first.bootstrap, group))
    producer.commit_transaction(DEADLINE_S)
    first.kill()

    second = BrokerProcess(tmp_path / "data", port=first.port, args=args).start()
    brokers.append(second)
    hw = wait_stable(second.bootstrap, topic, PARTITIONS)
    assert hw == dict.fromkeys(range(PARTITIONS), PER_PARTITION + 1)  # records + marker
    assert read_committed_values(second.bootstrap, topic, PARTITIONS) == expected(
        "kept", PARTITIONS
    )
    assert committed(second.bootstrap, group, topic, PARTITIONS) == {
        p: 40 + p for p in range(PARTITIONS)
    }
    assert "handler failed" not in second.output()


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_a_transaction_open_at_kill_9_is_aborted_by_the_restarted_broker(
    tmp_path: Path, durability: str, brokers: list[BrokerProcess]
) -> None:
    args = broker_args(tmp_path, durability)
    first = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(first)
    topic, group, txn_id = topic_name("txn-open"), topic_name("g"), topic_name("tx")
    create_topic(first, topic, partitions=PARTITIONS)
    old = txn_producer(first.bootstrap, txn_id)
    old.init_transactions(DEADLINE_S)
    old.begin_transaction()
    produce_txn_records(old, topic, PARTITIONS, "before")
    meta = group_metadata(first.bootstrap, group)
    old.send_offsets_to_transaction([TopicPartition(topic, p, 10) for p in range(PARTITIONS)], meta)
    old.commit_transaction(DEADLINE_S)

    old.begin_transaction()
    open_offsets = produce_txn_records(old, topic, PARTITIONS, "open")
    old.send_offsets_to_transaction([TopicPartition(topic, p, 99) for p in range(PARTITIONS)], meta)
    first_open = {p: min(v) for p, v in open_offsets.items()}
    assert first_open == dict.fromkeys(range(PARTITIONS), PER_PARTITION + 1)
    first.kill()

    second = BrokerProcess(tmp_path / "data", port=first.port, args=args).start()
    brokers.append(second)
    # Until the new broker aborts it, the transaction holds read_committed readers at
    # its first offset: ListOffsets answers the LSO, a reader's position stops there.
    held = 0
    reader = consumer(second.bootstrap, read_committed=True)
    uncommitted = consumer(second.bootstrap, read_committed=False)
    try:
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert time.monotonic() < deadline, "the open transaction was never aborted"
            msg = reader.poll(0.1)
            if msg is not None and msg.error() is None:
                value = msg.value()
                assert value is not None and value.decode().startswith("before-"), value
            positions = {tp.partition: tp.offset for tp in reader.position(reader.assignment())}
            lso = end_offsets(reader, topic, PARTITIONS)
            hw = end_offsets(uncommitted, topic, PARTITIONS)
            if lso is None or hw is None:
                continue
            if lso == hw:
                break
            # Markers land one partition at a time: each partition still open at the
            # last look was open at the earlier ones too, so nothing passed its start.
            for p in (p for p in range(PARTITIONS) if lso[p] != hw[p]):
                assert lso[p] == first_open[p], (p, lso, first_open, hw)
                assert positions[p] <= first_open[p], (p, positions, first_open)
            held += 1
    finally:
        reader.close()
        uncommitted.close()
    assert held > 0, (
        "the restarted broker aborted the transaction before a reader could look: "
        f"the restart took longer than transaction.timeout.ms={TXN_TIMEOUT_MS}"
    )
    assert f"transaction timed out; aborting transactional_id={txn_id}" in second.output()

    hw = wait_stable(second.bootstrap, topic, PARTITIONS)
    assert hw == dict.fromkeys(range(PARTITIONS), 2 * (PER_PARTITION + 1))
    assert read_committed_values(second.bootstrap, topic, PARTITIONS) == expected(
        "before", PARTITIONS
    )
    assert committed(second.bootstrap, group, topic, PARTITIONS) == dict.fromkeys(
        range(PARTITIONS), 10
    )

    # The old producer's epoch is fenced; a new one with the id goes on.
    with pytest.raises(KafkaException) as fenced:
        old.commit_transaction(DEADLINE_S)
    assert fenced.value.args[0].code() in FENCED, fenced.value
    new = txn_producer(second.bootstrap, txn_id)
    new.init_transactions(DEADLINE_S)
    new.begin_transaction()
    produce_txn_records(new, topic, PARTITIONS, "after")
    new.commit_transaction(DEADLINE_S)
    wait_stable(second.bootstrap, topic, PARTITIONS)
    values = read_committed_values(second.bootstrap, topic, PARTITIONS)
    before, after = expected("before", PARTITIONS), expected("after", PARTITIONS)
    assert values == {p: before[p] + after[p] for p in range(PARTITIONS)}
    assert "handler failed" not in second.output()


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_a_new_producer_aborts_the_transaction_left_open_at_kill_9(
    tmp_path: Path, durability: str, brokers: list[BrokerProcess]
) -> None:
    # A timeout far beyond the test: the abort must come from InitProducerId.
    args = broker_args(tmp_path, durability)
    first = BrokerProcess(tmp_path / "data", args=args).start()
    brokers.append(first)
    topic, group, txn_id = topic_name("txn-fenced"), topic_name("g"), topic_name("tx")
    create_topic(first, topic, partitions=PARTITIONS)
    old = txn_producer(first.bootstrap, txn_id, timeout_ms=600_000)
    old.init_transactions(DEADLINE_S)
    old.begin_transaction()
    produce_txn_records(old, topic, PARTITIONS, "open")
    meta = group_metadata(first.bootstrap, group)
    old.send_offsets_to_transaction([TopicPartition(topic, p, 7) for p in range(PARTITIONS)], meta)
    first.kill()

    second = BrokerProcess(tmp_path / "data", port=first.port, args=args).start()
    brokers.append(second)
    new = txn_producer(second.bootstrap, txn_id, timeout_ms=600_000)
    new.init_transactions(DEADLINE_S)
    # InitProducerId answers once the abort markers are in: no transaction is open now.
    ends = {}
    for read_committed in (True, False):
        reader = consumer(second.bootstrap, read_committed=read_committed)
        ends[read_committed] = end_offsets(reader, topic, PARTITIONS)
        reader.close()
    after_abort = dict.fromkeys(range(PARTITIONS), PER_PARTITION + 1)  # records + marker
    assert ends == {True: after_abort, False: after_abort}
    values = read_committed_values(second.bootstrap, topic, PARTITIONS)
    assert values == {p: [] for p in range(PARTITIONS)}
    assert committed(second.bootstrap, group, topic, PARTITIONS) == dict.fromkeys(
        range(PARTITIONS), -1001
    )
    with pytest.raises(KafkaException) as fenced:
        old.commit_transaction(DEADLINE_S)
    assert fenced.value.args[0].code() in FENCED, fenced.value

    new.begin_transaction()
    produce_txn_records(new, topic, PARTITIONS, "after")
    new.send_offsets_to_transaction([TopicPartition(topic, p, 8) for p in range(PARTITIONS)], meta)
    new.commit_transaction(DEADLINE_S)
    wait_stable(second.bootstrap, topic, PARTITIONS)
    assert read_committed_values(second.bootstrap, topic, PARTITIONS) == expected(
        "after", PARTITIONS
    )
    assert committed(second.bootstrap, group, topic, PARTITIONS) == dict.fromkeys(
        range(PARTITIONS), 8
    )
    assert "transaction timed out" not in second.output()
    assert "handler failed" not in second.output()


# -- 2. a transactional id moving between two brokers on one bucket --------------------


def commit_or_abort(producer: Producer) -> str:
    """Ends the producer's transaction as librdkafka lets it: "committed", "aborted"
    (the commit failed abortably and the abort went through) or "fatal"."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            producer.commit_transaction(DEADLINE_S)
            return "committed"
        except KafkaException as exc:
            err = exc.args[0]
            if err.fatal():
                return "fatal"
            if err.txn_requires_abort():
                return abort(producer, deadline)
            if not err.retriable() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def abort(producer: Producer, deadline: float) -> str:
    while True:
        try:
            producer.abort_transaction(DEADLINE_S)
            return "aborted"
        except KafkaException as exc:
            err = exc.args[0]
            if err.fatal():
                return "fatal"
            if not err.retriable() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for(what: str, check: Callable[[], bool]) -> None:
    wait_until(what, check, timeout=DEADLINE_S)


def topic_spread_over(brokers: list[BrokerProcess], partitions: int) -> str:
    """A new topic with partitions led by every broker. Placement hashes each partition
    onto a broker, so all of a topic's partitions may land on one: then another topic."""
    boot, nodes = bootstrap(brokers), {b.node_id for b in brokers}

    def led_by_all(topic: str) -> bool:
        return set(leaders(boot, topic)[1].values()) == nodes

    for _ in range(10):
        topic = topic_name("txn-move")
        create_topic(brokers[0], topic, partitions=partitions)
        try:
            wait_until("every broker to lead", functools.partial(led_by_all, topic), timeout=10)
            return topic
        except AssertionError:
            continue
    raise AssertionError("10 topics in a row had a broker that leads none of their partitions")


@pytest.mark.parametrize(
    ("how", "victim"),
    [("sigterm", "coordinator"), ("kill", "coordinator"), ("sigterm", "other"), ("kill", "other")],
)
def test_a_transaction_is_all_or_nothing_when_a_broker_leaves_mid_way(
    tmp_path: Path, brokers: list[BrokerProcess], how: str, victim: str
) -> None:
    partitions = 4
    args = ["--durability", "object", "--object-store", f"file://{tmp_path / 'bucket'}"]
    args += ["--session-timeout-ms", "1500"]
    brokers += [BrokerProcess(tmp_path / f"node{n}", node_id=n, args=args).start() for n in (1, 2)]
    boot = bootstrap(brokers)
    topic, txn_id = topic_spread_over(brokers, partitions), topic_name("tx")
    coordinator = find_txn_coordinator(boot, txn_id)
    gone = next(b for b in brokers if (b.node_id == coordinator) == (victim == "coordinator"))
    survivor = next(b for b in brokers if b is not gone)

    producer = txn_producer(boot, txn_id)
    producer.init_transactions(DEADLINE_S)
    producer.begin_transaction()
    produce_txn_records(producer, topic, partitions, "one")
    producer.commit_transaction(DEADLINE_S)
    wait_stable(boot, topic, partitions)
    assert read_committed_values(boot, topic, partitions) == expected("one", partitions)

    producer.begin_transaction()
    produce_txn_records(producer, topic, partitions, "two")
    if how == "kill":
        gone.kill()
    else:
        assert gone.stop() == 0, gone.output()[-4000:]
    wait_for(
        "the survivor to coordinate the id and lead every partition",
        lambda: (
            find_txn_coordinator(survivor.bootstrap, txn_id) == survivor.node_id
            and set(leaders(survivor.bootstrap, topic)[1].values()) == {survivor.node_id}
        ),
    )
    outcome = commit_or_abort(producer)

    wait_stable(survivor.bootstrap, topic, partitions)
    seen = by_tag(read_committed_values(survivor.bootstrap, topic, partitions))
    assert seen.get("one") == expected("one", partitions), seen
    two = seen.get("two", {})
    assert two in ({}, expected("two", partitions)), f"transaction two is partial: {two}"
    if outcome == "committed":
        assert two == expected("two", partitions), "an acknowledged commit was lost"
    elif outcome == "aborted":
        assert two == {}, "an acknowledged abort was committed"
    print(f"transaction two: the client says {outcome}, read_committed shows {bool(two)}")

    # The id goes on at its new coordinator.
    again = txn_producer(survivor.bootstrap, txn_id)
    again.init_transactions(DEADLINE_S)
    again.begin_transaction()
    produce_txn_records(again, topic, partitions, "three")
    again.commit_transaction(DEADLINE_S)
    wait_stable(survivor.bootstrap, topic, partitions)
    seen = by_tag(read_committed_values(survivor.bootstrap, topic, partitions))
    assert seen.get("three") == expected("three", partitions), seen
    assert "handler failed" not in survivor.output()

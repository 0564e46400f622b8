"""Several brokers on one bucket: spread, failover, scale-out, scale-in and a zombie.

Every broker is a real process on the same `file://` bucket with its own data dir and
node id; clients are librdkafka (confluent-kafka) with every broker in the bootstrap
list. Nothing is copied between brokers: a partition moves by its index being adopted
from the bucket (docs/cluster.md).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic
from tests.integration.test_crash_recovery import AckedLoad, assert_nothing_acked_lost_or_duplicated
from tests.integration.test_group_failover import committed, consume_in_group, produce

pytestmark = pytest.mark.integration

SESSION_MS = 1500  # short, so failover tests stay short; the default is 6000


def start_cluster(
    tmp_path: Path, nodes: list[int], *, extra: list[str] | None = None
) -> list[BrokerProcess]:
    args = [
        "--object-store",
        f"file://{tmp_path / 'bucket'}",
        "--session-timeout-ms",
        str(SESSION_MS),
        *(extra or []),
    ]
    return [BrokerProcess(tmp_path / f"node{n}", node_id=n, args=args).start() for n in nodes]


@pytest.fixture
def cleanup() -> Iterator[list[BrokerProcess]]:
    brokers: list[BrokerProcess] = []
    yield brokers
    for b in brokers:
        if b.proc is not None and b.proc.poll() is None:
            b.kill()
        # Shown by pytest only when the test failed: what each broker said last.
        code = b.proc.returncode if b.proc is not None else None
        print(f"--- node {b.node_id} exit={code}\n{b.output()[-4000:]}")


def bootstrap(brokers: list[BrokerProcess]) -> str:
    return ",".join(b.bootstrap for b in brokers)


def leaders(boot: str, topic: str) -> tuple[set[int], dict[int, int]]:
    """(broker node ids, partition -> leader node) as Metadata says now."""
    client = AdminClient({"bootstrap.servers": boot})
    md = client.list_topics(topic, timeout=10)
    return set(md.brokers), {p.id: p.leader for p in md.topics[topic].partitions.values()}


def coordinator(boot: str, group: str) -> int:
    """The group's coordinator node, retried while its slot is between brokers."""
    deadline = time.monotonic() + 45
    while True:
        # A new client each time: librdkafka keeps answering NOT_COORDINATOR from the
        # coordinator it looked up first instead of looking it up again.
        client = AdminClient({"bootstrap.servers": boot})
        future = client.describe_consumer_groups([group])[group]
        try:
            return int(future.result(timeout=10).coordinator.id)
        except TimeoutError:
            # librdkafka may keep asking a coordinator that just left: ask afresh.
            if time.monotonic() > deadline:
                raise
        except KafkaException as exc:
            moving = exc.args[0].code() == KafkaError.NOT_COORDINATOR
            if not (moving or exc.args[0].retriable()) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Poll `check` until true; returns how long it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - start


def test_three_brokers_spread_partitions_and_coordinators(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1, 2, 3])
    boot = bootstrap(cleanup)
    create_topic(cleanup[0], "spread", partitions=12)
    # Placement converges within a tick or two: each broker leads some partitions.
    wait_until(
        "every broker to lead partitions",
        lambda: set(leaders(boot, "spread")[1].values()) == {1, 2, 3},
    )
    assert leaders(boot, "spread")[0] == {1, 2, 3}
    coordinators = {coordinator(boot, f"g{i}") for i in range(12)}
    assert len(coordinators) >= 2  # group coordination is spread too
    load = AckedLoad(boot, "spread", partitions=12).start()
    time.sleep(1.5)
    load.stop()
    assert load.total() > 0
    assert_nothing_acked_lost_or_duplicated(load, boot)


def test_a_killed_brokers_partitions_move_to_the_survivors(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1, 2, 3], extra=["--durability", "object"])
    boot = bootstrap(cleanup)
    create_topic(cleanup[0], "failover", partitions=6)
    wait_until("leaders", lambda: -1 not in leaders(boot, "failover")[1].values())
    load = AckedLoad(boot, "failover", partitions=6).start()
    wait_until("load", lambda: load.total() > 1000)
    victim = cleanup[1]
    victim.kill()
    survivors = bootstrap([cleanup[0], cleanup[2]])
    took = wait_until(
        "the survivors to lead every partition",
        lambda: set(leaders(survivors, "failover")[1].values()) <= {1, 3},
    )
    before = load.total()
    wait_until("acks after the failover", lambda: load.total() > before + 500)
    load.stop()
    assert took < 30
    assert leaders(survivors, "failover")[0] == {1, 3}
    assert_nothing_acked_lost_or_duplicated(load, survivors)
    outputs = cleanup[0].output() + cleanup[2].output()
    assert "took over stream=" in outputs and "sealed stream=" in outputs


def test_a_joining_broker_takes_partitions_without_copying_data(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1])
    create_topic(cleanup[0], "grow", partitions=6)
    load = AckedLoad(cleanup[0].bootstrap, "grow", partitions=6).start()
    wait_until("load", lambda: load.total() > 1000)
    load.stop()
    cleanup += start_cluster(tmp_path, [2])
    boot = bootstrap(cleanup)
    wait_until("node 2 to lead partitions", lambda: 2 in leaders(boot, "grow")[1].values())
    assert_nothing_acked_lost_or_duplicated(load, boot)  # old data, through the new leader
    # Node 2 read the indexes from the bucket and wrote no data of its own.
    stream_dir = next((tmp_path / "bucket" / "streams").glob("*-n2"))
    assert "adopted keys" in cleanup[1].output()
    data = [p.stat().st_size for p in (stream_dir / "log").iterdir()]
    assert data and max(data) < 64 << 10  # ops only: no copied record batches


def test_partitions_move_to_a_joining_broker_under_load_without_losing_acks(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1])
    create_topic(cleanup[0], "moving", partitions=8)
    load = AckedLoad(cleanup[0].bootstrap, "moving", partitions=8).start()
    wait_until("load", lambda: load.total() > 1000)
    cleanup += start_cluster(tmp_path, [2])
    boot = bootstrap(cleanup)
    wait_until("node 2 to lead partitions", lambda: 2 in leaders(boot, "moving")[1].values())
    before = load.total()
    wait_until("acks after the move", lambda: load.total() > before + 1000)
    load.stop()
    assert_nothing_acked_lost_or_duplicated(load, boot)
    assert "handed over keys" in cleanup[0].output()


def test_a_stopped_broker_hands_its_partitions_over_at_once(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    # A long session timeout: the move must come from the clean leave, not a timeout.
    cleanup += start_cluster(tmp_path, [1, 2], extra=["--session-timeout-ms", "60000"])
    boot = bootstrap(cleanup)
    create_topic(cleanup[0], "shrink", partitions=6)
    wait_until("both to lead", lambda: set(leaders(boot, "shrink")[1].values()) == {1, 2})
    load = AckedLoad(boot, "shrink", partitions=6).start()
    wait_until("load", lambda: load.total() > 1000)
    assert cleanup[1].stop() == 0
    took = wait_until(
        "node 1 to lead everything",
        lambda: set(leaders(cleanup[0].bootstrap, "shrink")[1].values()) == {1},
    )
    before = load.total()
    wait_until("acks after the hand-over", lambda: load.total() > before + 500)
    load.stop()
    assert took < 10
    assert_nothing_acked_lost_or_duplicated(load, cleanup[0].bootstrap)
    assert "left the cluster" in cleanup[1].output()


def test_a_paused_broker_is_fenced_when_it_resumes(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1, 2], extra=["--durability", "object"])
    boot = bootstrap(cleanup)
    create_topic(cleanup[0], "zombie", partitions=8)
    wait_until("both to lead", lambda: set(leaders(boot, "zombie")[1].values()) == {1, 2})
    load = AckedLoad(boot, "zombie", partitions=8).start()
    wait_until("load", lambda: load.total() > 1000)
    zombie = cleanup[1]
    assert zombie.proc is not None
    os.kill(zombie.proc.pid, signal.SIGSTOP)
    try:
        wait_until(
            "node 1 to take the paused broker's partitions",
            lambda: set(leaders(cleanup[0].bootstrap, "zombie")[1].values()) == {1},
        )
    finally:
        os.kill(zombie.proc.pid, signal.SIGCONT)
    assert zombie.proc.wait(timeout=30) == 3  # it found out it was fenced, and left
    before = load.total()
    wait_until("acks after the takeover", lambda: load.total() > before + 500)
    load.stop()
    assert_nothing_acked_lost_or_duplicated(load, cleanup[0].bootstrap)
    assert "fenced" in zombie.output()


def test_a_silent_wal_broker_is_waited_for_not_taken_over(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1, 2])  # wal mode, --wal-failover wait
    boot = bootstrap(cleanup)
    create_topic(cleanup[0], "walwait", partitions=8)
    wait_until("both to lead", lambda: set(leaders(boot, "walwait")[1].values()) == {1, 2})
    producer = Producer({"bootstrap.servers": boot, "enable.idempotence": True})
    for i in range(400):
        producer.produce("walwait", value=str(i).encode(), partition=i % 8)
    assert producer.flush(20) == 0
    cleanup[1].kill()
    wait_until("the warning", lambda: "not taking its partitions over" in cleanup[0].output())
    assert 2 in leaders(cleanup[0].bootstrap, "walwait")[1].values()  # still node 2's
    # Its WAL volume, handed to a new broker, brings every partition back.
    (tmp_path / "node2").rename(tmp_path / "node5")
    cleanup += start_cluster(tmp_path, [5])
    wait_until(
        "node 5 to lead node 2's partitions",
        lambda: 2 not in leaders(cleanup[0].bootstrap, "walwait")[1].values(),
    )
    assert "took over stream=" in cleanup[2].output()


def test_group_offsets_move_with_the_coordinator(
    tmp_path: Path, cleanup: list[BrokerProcess]
) -> None:
    cleanup += start_cluster(tmp_path, [1, 2, 3], extra=["--session-timeout-ms", "60000"])
    boot = bootstrap(cleanup)
    create_topic(cleanup[0], "ledger", partitions=6)
    wait_until("spread", lambda: set(leaders(boot, "ledger")[1].values()) == {1, 2, 3})
    produce(boot, "ledger", 6, 20, "before")
    group = "projection"
    got, consumer = consume_in_group(boot, group, "ledger", 6 * 20)
    try:
        assert len(set(got)) == 6 * 20
        assert consumer.commit(asynchronous=False) is not None
    finally:
        consumer.close()
    owner = coordinator(boot, group)
    by_node = {b.node_id: b for b in cleanup}
    assert by_node[owner].stop() == 0  # its group slot moves with the clean leave
    rest = bootstrap([b for b in cleanup if b.node_id != owner])
    new_owner = coordinator(rest, group)
    assert new_owner != owner
    assert committed(rest, group, "ledger", 6) == dict.fromkeys(range(6), 20)

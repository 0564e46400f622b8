"""quixstreams exactly-once, end to end, through kill -9 of the app and of the broker.

A stateful quixstreams app (tests/integration/quix_app.py, processing_guarantee
"exactly-once") keeps a per-key running count and sum and emits one {"key", "seq",
"sum"} per input record. Inputs (integers over 20 keys) are produced while it runs;
the app is killed with SIGKILL mid-stream and started again (once on its own state
dir, once on an empty one, so the state comes back from the changelog topic), or the
broker is killed and restarted on the same data dir. Then `output`, read
read_committed, must hold for every key exactly the prefix sums of that key's inputs in
their order: one output per input, no duplicate, no gap, no input applied twice to the
state. This needs commit and abort markers, read_committed fetches of output and
changelog, TxnOffsetCommit applied only on commit, and fencing of the killed producer.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic
from tidelog.broker.processes import ChildProcess

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("quix_app.py")
INPUTS = 3000
KEYS = 20
PARTITIONS = 2
# Inputs arrive over about 15 s (200 a second, far below what the app keeps up with), so
# the stream is still flowing when the app or the broker is killed and when it is back.
CHUNK = 25
CHUNK_PAUSE_S = 0.125
DEADLINE_S = 120.0


def key_of(i: int) -> str:
    return f"acct-{i % KEYS:02d}"


def value_of(i: int) -> int:
    return (i * 7919) % 201 - 100  # negatives too: a sum applied twice shows


def wait_for(
    what: str, condition: Callable[[], bool], tick: Callable[[], None] = lambda: None
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        tick()
        time.sleep(0.05)


class InputLoad:
    """Produces the INPUTS records in chunks from a thread (idempotent, acks=all, long
    retries so a broker restart only delays them); each must be acknowledged."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.errors: list[str] = []
        self.acked = 0
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 90000,
                "reconnect.backoff.max.ms": 200,
            }
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err: object, msg: object) -> None:
        if err is None:
            self.acked += 1
        else:
            self.errors.append(str(err))

    def _run(self) -> None:
        for start in range(0, INPUTS, CHUNK):
            for i in range(start, min(start + CHUNK, INPUTS)):
                value = json.dumps(value_of(i)).encode()
                self._producer.produce(self.topic, key=key_of(i), value=value,
                                       on_delivery=self._on_delivery)  # fmt: skip
            self._producer.poll(0)
            time.sleep(CHUNK_PAUSE_S)
        self._producer.flush(DEADLINE_S)

    def start(self) -> InputLoad:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(DEADLINE_S)
        assert not self._thread.is_alive(), "the input producer did not finish"
        assert not self.errors, f"inputs not acknowledged: {self.errors[:5]}"
        assert self.acked == INPUTS


class OutputWatch:
    """Counts committed outputs as they appear (read_committed), for the test's waits."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "output-watch",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "reconnect.backoff.max.ms": 200,
            }
        )
        self._consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msgs = self._consumer.consume(1000, 0.2)
            self.count += sum(1 for msg in msgs if not msg.error())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._consumer.close()


class QuixApp(ChildProcess):
    """The app as a subprocess; `ensure_running` starts it again if it exited."""

    def __init__(
        self,
        tmp_path: Path,
        bootstrap: str,
        name: str,
        topics: tuple[str, str] = ("input", "output"),
    ) -> None:
        self.bootstrap = bootstrap
        self.app_name = name
        self.topics = topics
        super().__init__("quix app", [], log_path=tmp_path / "quix-app.log")
        self.use_state_dir(tmp_path / "state-0")

    def use_state_dir(self, state_dir: Path) -> None:
        self.command = [sys.executable, str(APP), self.bootstrap, *self.topics,
                        self.app_name, str(state_dir)]  # fmt: skip

    def ensure_running(self) -> None:
        if not self.running():
            self.start()


def read_all(bootstrap: str, topic: str, committed: bool) -> list[tuple[int, str, Any]]:
    """Every record of `topic` as (partition, key, value), per partition in offset order,
    read until each partition's position reaches its high watermark."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "verify",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    try:
        ends = {}
        for p in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends[p] = int(high)
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        out: list[tuple[int, str, Any]] = []

        def done() -> bool:
            positions = consumer.position([TopicPartition(topic, p) for p in range(PARTITIONS)])
            return all(tp.offset >= ends[tp.partition] for tp in positions)

        def poll() -> None:
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    raise KafkaException(msg.error())
                out.append((msg.partition(), msg.key().decode(), json.loads(msg.value())))

        wait_for(f"{topic} read to its end {ends}", done, poll)
        return out
    finally:
        consumer.close()


def assert_exactly_once(bootstrap: str) -> None:
    inputs = read_all(bootstrap, "input", committed=False)
    assert len(inputs) == INPUTS, f"{len(inputs)} inputs stored of {INPUTS}"
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sums: dict[str, int] = defaultdict(int)
    for _, key, value in inputs:
        sums[key] += int(value)
        expected[key].append({"key": key, "seq": len(expected[key]) + 1, "sum": sums[key]})
    outputs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, key, value in read_all(bootstrap, "output", committed=True):
        assert value["key"] == key, (key, value)
        outputs[key].append(value)
    assert sorted(outputs) == sorted(expected)
    for key, want in expected.items():
        got = outputs[key]
        seqs = [o["seq"] for o in got]
        diff = [i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w]
        assert got == want, (
            f"{key}: {len(got)} outputs for {len(want)} inputs; first difference at "
            f"{diff[0] if diff else min(len(got), len(want))}; "
            f"duplicated seqs {sorted({s for s in seqs if seqs.count(s) > 1})[:10]}"
        )


def create_topics(broker: BrokerProcess) -> None:
    create_topic(broker, "input", partitions=PARTITIONS)
    create_topic(broker, "output", partitions=PARTITIONS)


def test_app_killed_mid_stream_twice_outputs_each_input_exactly_once(
    tmp_path: Path,
) -> None:
    with BrokerProcess(tmp_path / "data") as broker:
        create_topics(broker)
        app = QuixApp(tmp_path, broker.bootstrap, "sums-a")
        watch = OutputWatch(broker.bootstrap, "output")
        try:
            load = InputLoad(broker.bootstrap, "input").start()
            app.start()
            wait_for("the first outputs", lambda: watch.count >= INPUTS // 5)
            assert watch.count < INPUTS, "the kill would not be mid-stream"
            app.kill()
            app.start()  # on its own state dir
            # Past the committed outputs seen before the kill: the new app really ran.
            mark = watch.count
            wait_for("outputs after the restart", lambda: watch.count > mark)
            assert watch.count < INPUTS, "the second kill would not be mid-stream"
            app.kill()
            app.use_state_dir(tmp_path / "state-1")  # empty: restored from the changelog
            app.start()
            load.join()
            wait_for("every output", lambda: watch.count >= INPUTS)
            app.kill()
            assert_exactly_once(broker.bootstrap)
        finally:
            app.kill()
            watch.close()


def test_broker_killed_mid_stream_outputs_each_input_exactly_once(
    tmp_path: Path,
) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    app = QuixApp(tmp_path, broker.bootstrap, "sums-b")
    watch = OutputWatch(broker.bootstrap, "output")
    try:
        create_topics(broker)
        load = InputLoad(broker.bootstrap, "input").start()
        app.start()
        wait_for("the first outputs", lambda: watch.count >= INPUTS // 5)
        assert watch.count < INPUTS, "the kill would not be mid-stream"
        broker.kill()
        broker = BrokerProcess(tmp_path / "data", port=broker.port).start()
        # The app may ride the restart out or exit on a fatal transaction error:
        # then it is started again, as a supervisor would.
        load.join()
        wait_for("every output", lambda: watch.count >= INPUTS, app.ensure_running)
        app.kill()
        assert_exactly_once(broker.bootstrap)
    finally:
        app.kill()
        watch.close()
        broker.stop()

"""kcat, the CLI built on an old librdkafka (Debian's 2.0.2), against `tidelog serve`.

librdkafka 2.0.2 decides features from the ApiVersions answer differently from the
2.16 inside confluent-kafka (test_clients.py), so it is a client of its own: metadata
(-L), produce with keys, headers and every codec (-P), read back by partition and offset
(-C), offsets by timestamp (-Q), idempotence (-X). Whether a batch really went out
compressed is checked on its own, from librdkafka's log and the stored batch header.
`make kcat` installs kcat from Debian's packages; without it every test here is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import fetch_records
from tests.integration.test_clients import create_topic, topic_name
from tidelog.protocol.batch import Compression, iter_batches

KCAT = shutil.which("kcat")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        KCAT is None,
        reason="kcat is not on PATH: `make kcat` installs Debian's kcat package (needs root)",
    ),
]

RECORD = "%o|%k|%s|%h\n"  # kcat -f: offset|key|value|headers, one line per record

# librdkafka 2.0.2 keeps gzip, snappy and lz4 only if the broker's Produce range meets
# [0, 0] (rdkafka_msgset_writer.c; librdkafka issue #4956), and would otherwise send
# them uncompressed, silently. tidelog advertises Produce 0-9 for that reason (refusing
# v0-2 on use, as Kafka 4 does, KAFKA-18659); these tests pin that the codecs survive.


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("kcat") / "data")
    with proc:
        yield proc
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


def kcat(broker: BrokerProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert KCAT is not None
    done = subprocess.run(
        [KCAT, "-b", broker.bootstrap, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (
        f"kcat {' '.join(args)} exited {done.returncode}\nstderr:\n{done.stderr}\n"
        f"broker log (tail):\n{broker.output()[-4000:]}"
    )
    return done


def read_partition(broker: BrokerProcess, topic: str, partition: int = 0) -> list[str]:
    """Every record of one partition, from the beginning, as `RECORD` lines."""
    args = ["-C", "-t", topic, "-p", str(partition), "-o", "beginning", "-e", "-q", "-f", RECORD]
    return kcat(broker, *args).stdout.splitlines()


def stored_codecs(broker: BrokerProcess, topic: str) -> list[Compression]:
    records = fetch_records(broker.bootstrap, topic, 0, 0)
    return [header.compression for _, header in iter_batches(records)]


def test_kcat_lists_the_broker_and_a_topic(broker: BrokerProcess) -> None:
    topic = topic_name("kcat-meta")
    create_topic(broker, topic, partitions=3)
    text = kcat(broker, "-L").stdout
    assert f"broker 1 at {broker.bootstrap} (controller)" in text
    assert f'topic "{topic}" with 3 partitions:' in text
    meta = json.loads(kcat(broker, "-L", "-J", "-t", topic).stdout)
    assert meta["controllerid"] == 1
    assert meta["brokers"] == [{"id": 1, "name": broker.bootstrap}]
    (described,) = meta["topics"]
    assert described["topic"] == topic
    assert [(p["partition"], p["leader"]) for p in described["partitions"]] == [
        (0, 1),
        (1, 1),
        (2, 1),
    ]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produces_keys_and_headers_and_reads_them_back(
    broker: BrokerProcess, codec: str
) -> None:
    topic = topic_name(f"kcat-{codec}")
    create_topic(broker, topic, partitions=2)
    lines = "".join(f"key-{i % 4}:value-{i}\n" for i in range(30))
    headers = ["-H", "trace=abc", "-H", "app=kcat"]
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec, *headers, stdin=lines)
    assert read_partition(broker, topic) == [
        f"{i}|key-{i % 4}|value-{i}|trace=abc,app=kcat" for i in range(30)
    ]
    assert read_partition(broker, topic, partition=1) == []


@pytest.mark.parametrize(
    "codec",
    [
        "gzip",
        "snappy",
        "lz4",
        "zstd",
    ],
)
def test_kcat_batches_are_stored_compressed(broker: BrokerProcess, codec: str) -> None:
    topic = topic_name(f"kcat-wire-{codec}")
    create_topic(broker, topic)
    lines = "".join(f"value-{i}-" * 20 + "\n" for i in range(20))  # compresses well
    done = kcat(broker, "-P", "-t", topic, "-p", "0", "-z", codec, "-d", "msg", stdin=lines)
    # librdkafka's own account of each batch it sent ends with the codec it used.
    log = [line for line in done.stderr.splitlines() if "|PRODUCE|" in line]
    sent = [line for line in log if "Produce MessageSet" in line]
    assert sent and all(line.endswith(f", {codec})") for line in sent), "\n".join(log)
    assert set(stored_codecs(broker, topic)) == {Compression[codec.upper()]}
    assert len(read_partition(broker, topic)) == 20


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_reads_batches_another_client_compressed(broker: BrokerProcess, codec: str) -> None:
    # kcat cannot send most codecs compressed (see above), so confluent-kafka writes them.
    topic = topic_name(f"kcat-read-{codec}")
    create_topic(broker, topic)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50}
    )
    for i in range(40):
        producer.produce(
            topic, key=b"k%d" % i, value=b"value-%d-" % i * 10, partition=0, headers=[("h", b"x")]
        )
    assert producer.flush(30) == 0
    assert set(stored_codecs(broker, topic)) == {Compression[codec.upper()]}
    assert read_partition(broker, topic) == [
        f"{i}|k{i}|{f'value-{i}-' * 10}|h=x" for i in range(40)
    ]


def test_kcat_idempotent_producer_gets_a_producer_id(broker: BrokerProcess) -> None:
    topic = topic_name("kcat-idem")
    create_topic(broker, topic)
    lines = "".join(f"{i}\n" for i in range(500))
    kcat(broker, "-P", "-t", topic, "-p", "0", "-X", "enable.idempotence=true", stdin=lines)
    records = fetch_records(broker.bootstrap, topic, 0, 0)
    headers = [header for _, header in iter_batches(records)]
    assert all(h.producer_id >= 0 and h.producer_epoch == 0 for h in headers), headers
    # One producer session: sequences run on from batch to batch without a gap.
    assert [h.base_sequence for h in headers] == [h.base_offset for h in headers]
    assert read_partition(broker, topic) == [f"{i}||{i}|" for i in range(500)]


def test_kcat_queries_offsets_by_timestamp(broker: BrokerProcess) -> None:
    topic = topic_name("kcat-times")
    create_topic(broker, topic)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    base = 1_700_000_000_000
    for i in range(10):
        producer.produce(topic, value=b"v%d" % i, partition=0, timestamp=base + i * 1000)
        assert producer.flush(10) == 0

    def offset_at(timestamp: int) -> int:
        # One query per call: kcat keeps only the last -t of a repeated topic:partition.
        answer = json.loads(kcat(broker, "-Q", "-J", "-t", f"{topic}:0:{timestamp}").stdout)
        offset: int = answer[topic]["0"]["offset"]
        return offset

    assert offset_at(base + 4500) == 5  # first record at or after the time
    assert offset_at(base + 4000) == 4
    assert offset_at(base - 1) == 0
    assert offset_at(base + 99_000) == -1  # nothing that late
    assert offset_at(-1) == 10  # latest
    assert offset_at(-2) == 0  # earliest
    start_at_time = ["-C", "-t", topic, "-p", "0", "-o", f"s@{base + 7000}", "-e", "-q"]
    assert kcat(broker, *start_at_time, "-f", "%o %s %T\n").stdout.splitlines() == [
        f"{i} v{i} {base + i * 1000}" for i in (7, 8, 9)
    ]
    from_end = ["-C", "-t", topic, "-p", "0", "-o", "-2", "-e", "-q", "-f", "%o\n"]
    assert kcat(broker, *from_end).stdout.splitlines() == ["8", "9"]


def test_kcat_group_consumer_commits_and_a_second_run_resumes_after_it(
    broker: BrokerProcess,
) -> None:
    """kcat -G: the balanced consumer (JoinGroup/SyncGroup) with auto commit on close.

    The second run on the same group is given one new record per partition and stops
    after that many: had the first run's commits been lost, it would start again from
    the beginning (auto.offset.reset=earliest) and print old records instead.
    """
    topic, group = topic_name("kcat-group"), f"kcat-{uuid.uuid4().hex[:8]}"
    partitions, per_partition = 3, 5
    create_topic(broker, topic, partitions=partitions)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, value=f"old-{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0
    group_args = ["-X", "session.timeout.ms=6000", "-X", "auto.offset.reset=earliest"]
    group_args += ["-q", "-f", "%p|%o|%s\n", "-G", group, topic]

    total = partitions * per_partition
    first = kcat(broker, "-c", str(total), *group_args).stdout.splitlines()
    expected = [f"{p}|{i}|old-{p}-{i}" for p in range(partitions) for i in range(per_partition)]
    assert sorted(first) == expected

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        stored = {tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=10)}
    finally:
        consumer.close()
    assert stored == dict.fromkeys(range(partitions), per_partition)

    for p in range(partitions):
        producer.produce(topic, value=f"new-{p}".encode(), partition=p)
    assert producer.flush(30) == 0
    second = kcat(broker, "-c", str(partitions), *group_args).stdout.splitlines()
    assert sorted(second) == [f"{p}|{per_partition}|new-{p}" for p in range(partitions)]

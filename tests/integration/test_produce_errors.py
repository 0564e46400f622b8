"""A produce answered with an error leaves the log exactly as it was.

Each error path of Produce a client can reach is taken against a partition that
already holds one record: the answer carries the Kafka error code, and the high
watermark and what a consumer reads are unchanged, at once and after a `kill -9`
and a restart on the same data directory (so the WAL replay is covered too).
A request mixing a good partition with a refused one stores the good one only.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kio.schema.list_offsets.v7.request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import BrokerId, TopicName, TransactionalId
from kio.static.primitive import Records, i8, i16, i32, i32Timedelta, i64

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, fetch_request
from tests.integration.test_clients import admin
from tidelog.protocol.batch import Compression
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch, decode_records

pytestmark = pytest.mark.integration

TOPIC = "invariant"
SMALL = "invariant-small"  # max.message.bytes=1000
PARTITIONS = 16
PID, EPOCH = 424_242, 3  # an idempotent producer primed into partition IDEMPOTENT
IDEMPOTENT = 15
TS = 1_700_000_000_000
TEN_S = i32Timedelta.parse(datetime.timedelta(seconds=10))


def batch(value: bytes, **kw: Any) -> bytearray:
    return bytearray(build_batch([Record(0, TS, b"k", value)], **kw))


def produce(
    parts: list[tuple[str, int, bytes]], *, acks: int = -1, transactional_id: str | None = None
) -> ProduceRequest:
    by_topic: dict[str, list[PartitionProduceData]] = {}
    for topic, partition, records in parts:
        by_topic.setdefault(topic, []).append(
            PartitionProduceData(index=i32(partition), records=Records(records))
        )
    return ProduceRequest(
        transactional_id=None if transactional_id is None else TransactionalId(transactional_id),
        acks=i16(acks),
        timeout=TEN_S,
        topic_data=tuple(
            TopicProduceData(name=TopicName(t), partition_data=tuple(p))
            for t, p in by_topic.items()
        ),
    )


def codes(bootstrap: str, request: Any) -> dict[tuple[str, int], ErrorCode]:
    with RawClient(bootstrap) as c:
        resp = c.request(request)
    return {
        (t.name, p.index): ErrorCode(p.error_code)
        for t in resp.responses
        for p in t.partition_responses
    }


def bad_crc() -> bytes:
    b = batch(b"bad-crc")
    b[-1] ^= 0x01
    return bytes(b)


def legacy_magic() -> bytes:
    b = batch(b"magic-1")
    b[16] = 1
    return bytes(b)


def nonzero_base_offset() -> bytes:
    b = batch(b"based")
    b[0:8] = (7).to_bytes(8, "big")  # the CRC does not cover the base offset
    return bytes(b)


def zstd_in_produce_v6(bootstrap: str) -> dict[tuple[str, int], ErrorCode]:
    from kio.schema.produce.v6.request import PartitionProduceData as P6
    from kio.schema.produce.v6.request import ProduceRequest as R6
    from kio.schema.produce.v6.request import TopicProduceData as T6

    zstd = build_batch([Record(0, TS, None, b"z")], compression=Compression.ZSTD)
    req = R6(
        transactional_id=None,
        acks=i16(-1),
        timeout=TEN_S,
        topic_data=(
            T6(name=TopicName(TOPIC), partition_data=(P6(index=i32(6), records=Records(zstd)),)),
        ),
    )
    return codes(bootstrap, req)


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[str], dict[tuple[str, int], ErrorCode]]
    refused: tuple[str, int]
    code: ErrorCode


def _req(request: Callable[[], Any]) -> Callable[[str], dict[tuple[str, int], ErrorCode]]:
    return lambda bootstrap: codes(bootstrap, request())


CASES = [
    Case(
        "bad-crc",
        _req(lambda: produce([(TOPIC, 0, bad_crc())])),
        (TOPIC, 0),
        ErrorCode.corrupt_message,
    ),
    Case(
        "legacy-magic",
        _req(lambda: produce([(TOPIC, 1, legacy_magic())])),
        (TOPIC, 1),
        ErrorCode.unsupported_for_message_format,
    ),
    Case(
        "two-batches",
        _req(lambda: produce([(TOPIC, 2, bytes(batch(b"one") + batch(b"two")))])),
        (TOPIC, 2),
        ErrorCode.invalid_record,
    ),
    Case(
        "base-offset-not-zero",
        _req(lambda: produce([(TOPIC, 3, nonzero_base_offset())])),
        (TOPIC, 3),
        ErrorCode.invalid_record,
    ),
    Case(
        "empty-record-set",
        _req(lambda: produce([(TOPIC, 4, b"")])),
        (TOPIC, 4),
        ErrorCode.invalid_record,
    ),
    Case(
        "larger-than-max-message-bytes",
        _req(lambda: produce([(SMALL, 0, bytes(batch(b"x" * 5000)))])),
        (SMALL, 0),
        ErrorCode.message_too_large,
    ),
    Case(
        "zstd-before-produce-v7",
        zstd_in_produce_v6,
        (TOPIC, 6),
        ErrorCode.unsupported_compression_type,
    ),
    Case(
        "unknown-partition",
        _req(lambda: produce([(TOPIC, 99, bytes(batch(b"nowhere")))])),
        (TOPIC, 99),
        ErrorCode.unknown_topic_or_partition,
    ),
    Case(
        "unknown-topic",
        _req(lambda: produce([("no-such-topic", 0, bytes(batch(b"nowhere")))])),
        ("no-such-topic", 0),
        ErrorCode.unknown_topic_or_partition,
    ),
    Case(
        "internal-topic",
        _req(lambda: produce([("__consumer_offsets", 0, bytes(batch(b"offsets?")))])),
        ("__consumer_offsets", 0),
        ErrorCode.invalid_topic_exception,
    ),
    Case(
        "transactional",
        # A transactional batch for a partition no open transaction of "tx" holds: the
        # late write KIP-890 verification refuses (docs/transactions.md).
        _req(lambda: produce([(TOPIC, 7, bytes(batch(b"txn")))], transactional_id="tx")),
        (TOPIC, 7),
        ErrorCode.invalid_txn_state,
    ),
    Case(
        "acks-2",
        _req(lambda: produce([(TOPIC, 8, bytes(batch(b"acks")))], acks=2)),
        (TOPIC, 8),
        ErrorCode.invalid_required_acks,
    ),
    Case(
        "out-of-order-sequence",
        _req(
            lambda: produce(
                [
                    (
                        TOPIC,
                        IDEMPOTENT,
                        bytes(
                            batch(b"gap", producer_id=PID, producer_epoch=EPOCH, base_sequence=5)
                        ),
                    )
                ]
            )
        ),
        (TOPIC, IDEMPOTENT),
        ErrorCode.out_of_order_sequence_number,
    ),
    Case(
        "stale-producer-epoch",
        _req(
            lambda: produce(
                [
                    (
                        TOPIC,
                        IDEMPOTENT,
                        bytes(
                            batch(
                                b"old", producer_id=PID, producer_epoch=EPOCH - 1, base_sequence=1
                            )
                        ),
                    )
                ]
            )
        ),
        (TOPIC, IDEMPOTENT),
        ErrorCode.invalid_producer_epoch,
    ),
]


def high_watermarks(bootstrap: str) -> dict[tuple[str, int], int]:
    layout = {TOPIC: PARTITIONS, SMALL: 1}
    req = ListOffsetsRequest(
        replica_id=BrokerId(-1),
        isolation_level=i8(0),
        topics=tuple(
            ListOffsetsTopic(
                name=TopicName(t),
                partitions=tuple(
                    ListOffsetsPartition(
                        partition_index=i32(p), current_leader_epoch=i32(-1), timestamp=i64(-1)
                    )
                    for p in range(n)
                ),
            )
            for t, n in layout.items()
        ),
    )
    with RawClient(bootstrap) as c:
        resp = c.request(req)
    out = {}
    for t in resp.topics:
        for p in t.partitions:
            assert p.error_code == 0, (t.name, p.partition_index, p.error_code)
            out[(t.name, p.partition_index)] = int(p.offset)
    return out


def log_state(bootstrap: str) -> dict[tuple[str, int], tuple[int, list[tuple[int, bytes | None]]]]:
    """Every partition's high watermark and the (offset, value) pairs a consumer reads."""
    marks = high_watermarks(bootstrap)
    state = {}
    with RawClient(bootstrap) as c:
        for (topic, partition), hw in marks.items():
            resp = c.request(fetch_request(topic, [(partition, 0)]))
            data = resp.responses[0].partitions[0]
            assert data.error_code == 0, (topic, partition, data.error_code)
            records = decode_records(bytes(data.records or b""))
            state[(topic, partition)] = (hw, [(r.offset, r.value) for r in records])
    return state


def prime(broker: BrokerProcess) -> None:
    """The topics, and one record already in every partition."""
    from confluent_kafka.admin import NewTopic

    client = admin(broker)
    futures = client.create_topics(
        [
            NewTopic(TOPIC, PARTITIONS, 1),
            NewTopic(SMALL, 1, 1, config={"max.message.bytes": "1000"}),
        ],
        operation_timeout=10,
    )
    for f in futures.values():
        f.result(30)
    parts = [(TOPIC, p, bytes(batch(f"primed-{p}".encode()))) for p in range(IDEMPOTENT)]
    parts.append(
        (
            TOPIC,
            IDEMPOTENT,
            bytes(
                batch(b"primed-idempotent", producer_id=PID, producer_epoch=EPOCH, base_sequence=0)
            ),
        )
    )
    parts.append((SMALL, 0, bytes(batch(b"small"))))
    answered = codes(broker.bootstrap, produce(parts))
    assert set(answered.values()) == {ErrorCode.none}, answered


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("produce-errors") / "data") as b:
        prime(b)
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_produce_answered_with_an_error_leaves_the_log_exactly_as_it_was(
    broker: BrokerProcess, case: Case
) -> None:
    before = log_state(broker.bootstrap)
    answered = case.send(broker.bootstrap)
    assert answered == {case.refused: case.code}
    assert log_state(broker.bootstrap) == before
    assert "Traceback" not in broker.output()


def test_a_refused_partition_does_not_hold_back_the_good_one_in_the_same_request(
    broker: BrokerProcess,
) -> None:
    before = log_state(broker.bootstrap)
    answered = codes(
        broker.bootstrap,
        produce([(TOPIC, 9, bytes(batch(b"good"))), (TOPIC, 10, bad_crc())]),
    )
    assert answered == {(TOPIC, 9): ErrorCode.none, (TOPIC, 10): ErrorCode.corrupt_message}
    after = log_state(broker.bootstrap)
    hw, records = before[(TOPIC, 9)]
    assert after.pop((TOPIC, 9)) == (hw + 1, [*records, (hw, b"good")])
    before.pop((TOPIC, 9))
    assert after == before


def test_a_produce_answered_with_an_error_stays_unwritten_after_kill_9_and_restart(
    tmp_path: Path,
) -> None:
    first = BrokerProcess(tmp_path / "data").start()
    try:
        prime(first)
        primed = log_state(first.bootstrap)
        for case in CASES:
            assert case.send(first.bootstrap) == {case.refused: case.code}, case.name
        assert log_state(first.bootstrap) == primed
    finally:
        first.kill()
    with BrokerProcess(tmp_path / "data", port=first.port) as second:
        assert log_state(second.bootstrap) == primed

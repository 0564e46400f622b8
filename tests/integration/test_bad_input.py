"""Bad input gets a clear answer and harms nobody else.

A malformed frame closes that connection only; a bad record batch gets its Kafka
error code and stores nothing; unknown topics, invalid names and oversized batches
are refused with the codes Kafka uses.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName
from kio.static.primitive import Records, i8, i16, i32, i32Timedelta

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, produce_request
from tests.integration.test_clients import create_topic
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("bad") / "data"
    with BrokerProcess(data, args=["--no-auto-create-topics", "--max-request-bytes", "65536"]) as b:
        create_topic(b, "good", partitions=1)
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of this test's own, for tests that read the log: lines a peer causes are
    rate-limited per cause (docs/connections.md), so the module's broker may already
    have spent the budget of the cause a test looks for."""
    with BrokerProcess(tmp_path / "data", args=["--no-auto-create-topics"]) as b:
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


def api_versions_works(broker: BrokerProcess) -> bool:
    with RawClient(broker.bootstrap) as c:
        resp = c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        return bool(resp.error_code == ErrorCode.none)


def produce(broker: BrokerProcess, topic: str, records: bytes, partition: int = 0) -> ErrorCode:
    req = produce_request(topic, partition, records)
    with RawClient(broker.bootstrap) as c:
        resp = c.request(req)
    return ErrorCode(resp.responses[0].partition_responses[0].error_code)


def high_watermark(broker: BrokerProcess, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "hw"})
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        c.close()


def a_batch(value: bytes = b"v") -> bytearray:
    return bytearray(build_batch([Record(0, 1_700_000_000_000, b"k", value)]))


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(struct.pack(">i", 1 << 20) + b"x" * 100, id="larger-than-max-request-bytes"),
        pytest.param(struct.pack(">i", -5), id="negative-size"),
        pytest.param(struct.pack(">i", 3) + b"\x00\x12\x00", id="truncated-header"),
        pytest.param(struct.pack(">i", 10) + b"\x7f\x7f" + b"\x00" * 8, id="unknown-api-key"),
        pytest.param(struct.pack(">ihhih", 10, 0, 42, 1, -1), id="unsupported-produce-version"),
        pytest.param(
            struct.pack(">ihhih", 14, 3, 12, 1, 0) + b"\xff\xff\xff\x0f", id="garbage-metadata-body"
        ),
    ],
)
def test_malformed_frame_closes_only_that_connection(broker: BrokerProcess, frame: bytes) -> None:
    with RawClient(broker.bootstrap) as bystander, RawClient(broker.bootstrap) as offender:
        offender.send_raw(frame)
        assert offender.is_closed_by_peer()
        ok = bystander.request(
            ApiVersionsRequest(client_software_name="t", client_software_version="1")
        )
        assert ok.error_code == ErrorCode.none
    assert "closing connection" in broker.output()
    assert api_versions_works(broker)


# Metadata v12 whose compact topics array announces 2**32-2 entries (issue 11): kio
# alone reserves 32 GiB for them, and the failed allocation aborts the process.
FOUR_BILLION_TOPICS = bytes.fromhex("000000110003000c0000000100017800ffffffff0f")


def test_a_21_byte_request_announcing_four_billion_topics_closes_only_its_connection(
    own_broker: BrokerProcess,
) -> None:
    broker = own_broker
    with RawClient(broker.bootstrap) as bystander, RawClient(broker.bootstrap) as offender:
        offender.send_raw(FOUR_BILLION_TOPICS)
        assert offender.is_closed_by_peer()
        ok = bystander.request(
            ApiVersionsRequest(client_software_name="t", client_software_version="1")
        )
        assert ok.error_code == ErrorCode.none
    assert broker.proc is not None and broker.proc.poll() is None, broker.output()
    assert "array count the bytes left cannot hold field=topics count=4294967294" in (
        broker.output()
    )
    assert api_versions_works(broker)


@pytest.mark.parametrize(
    ("api_key", "body"),
    [
        # OffsetCommit v8: group "g", generation -1, member "", instance null, topics null.
        pytest.param(8, b"\x02g" + struct.pack(">i", -1) + b"\x01\x00\x00\x00", id="offset-commit"),
        # DeleteGroups v2: groups_names null.
        pytest.param(42, b"\x00\x00", id="delete-groups"),
    ],
)
def test_a_null_array_the_schema_forbids_closes_the_connection_without_a_traceback(
    own_broker: BrokerProcess, api_key: int, body: bytes
) -> None:
    broker = own_broker
    version = {8: 8, 42: 2}[api_key]
    header = struct.pack(">hhih", api_key, version, 5, -1) + b"\x00"
    logged_before = len(broker.output())
    with RawClient(broker.bootstrap) as offender:
        offender.send_raw(struct.pack(">i", len(header) + len(body)) + header + body)
        assert offender.is_closed_by_peer()
    assert api_versions_works(broker)
    logged = broker.output()[logged_before:]
    assert "null where the schema forbids null" in logged, logged
    assert "Traceback" not in logged, logged


def test_unknown_api_versions_version_gets_a_v0_answer_with_unsupported_version(
    broker: BrokerProcess,
) -> None:
    with RawClient(broker.bootstrap) as c:
        # A too-new ApiVersions still has a v2 header: client id, then tagged fields.
        c.send_raw(struct.pack(">ihhihB", 11, 18, 99, 7, 0, 0))
        frame = c.read_frame()
    correlation, error, count = struct.unpack_from(">ihi", frame)
    assert (correlation, error) == (7, ErrorCode.unsupported_version)
    ranges = {struct.unpack_from(">hhh", frame, 10 + 6 * i)[0] for i in range(count)}
    assert {0, 1, 3, 18} <= ranges


def test_bad_crc_is_corrupt_message_and_nothing_is_stored(broker: BrokerProcess) -> None:
    before = high_watermark(broker, "good")
    bad = a_batch()
    bad[-1] ^= 0x01
    assert produce(broker, "good", bytes(bad)) == ErrorCode.corrupt_message
    assert high_watermark(broker, "good") == before
    assert produce(broker, "good", bytes(a_batch())) == ErrorCode.none
    assert high_watermark(broker, "good") == before + 1


def test_legacy_magic_is_unsupported_for_message_format(broker: BrokerProcess) -> None:
    legacy = a_batch()
    legacy[16] = 1  # magic byte
    assert produce(broker, "good", bytes(legacy)) == ErrorCode.unsupported_for_message_format


def test_batch_over_max_message_bytes_is_message_too_large(broker: BrokerProcess) -> None:
    big = bytes(build_batch([Record(0, 1_700_000_000_000, None, b"x" * 60_000)]))
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("small", 1, 1, config={"max.message.bytes": "1000"})])[
        "small"
    ].result(30)
    assert produce(broker, "small", big) == ErrorCode.message_too_large
    assert high_watermark(broker, "small") == 0


def test_unknown_topic_with_auto_create_off(broker: BrokerProcess) -> None:
    assert produce(broker, "nope", bytes(a_batch())) == ErrorCode.unknown_topic_or_partition
    with RawClient(broker.bootstrap) as c:
        resp = c.request(
            MetadataRequest(
                topics=(MetadataRequestTopic(topic_id=None, name=TopicName("nope")),),
                allow_auto_topic_creation=True,
                include_topic_authorized_operations=False,
            )
        )
    assert resp.topics[0].error_code == ErrorCode.unknown_topic_or_partition


def test_invalid_topic_name_in_metadata(broker: BrokerProcess) -> None:
    with RawClient(broker.bootstrap) as c:
        resp = c.request(
            MetadataRequest(
                topics=(MetadataRequestTopic(topic_id=None, name=TopicName("bad name!")),),
                allow_auto_topic_creation=True,
                include_topic_authorized_operations=False,
            )
        )
    assert resp.topics[0].error_code == ErrorCode.invalid_topic_exception


def test_unknown_partition_is_refused(broker: BrokerProcess) -> None:
    code = produce(broker, "good", bytes(a_batch()), partition=9)
    assert code == ErrorCode.unknown_topic_or_partition


def test_bad_command_line_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    for args in (
        ["--listen", "nonsense"],
        ["--durability", "sometimes"],
        ["--flush-interval-ms", "-3"],
        ["--flush-bytes", "10"],
        ["--object-store", "ftp://x"],
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tidelog.broker.cli",
                "serve",
                "--data-dir",
                str(tmp_path),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_environment_variable_sets_an_option(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "TIDELOG_DURABILITY": "never"}
    proc = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert "TIDELOG_DURABILITY" in proc.stderr


def test_zstd_in_produce_older_than_v7_is_unsupported_compression(broker: BrokerProcess) -> None:
    from kio.schema.produce.v6.request import PartitionProduceData as P6
    from kio.schema.produce.v6.request import ProduceRequest as R6
    from kio.schema.produce.v6.request import TopicProduceData as T6

    from tidelog.protocol.batch import Compression

    zstd = build_batch([Record(0, 1_700_000_000_000, None, b"z")], compression=Compression.ZSTD)
    req = R6(
        transactional_id=None,
        acks=i16(-1),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)),
        topic_data=(
            T6(
                name=TopicName("good"),
                partition_data=(P6(index=i32(0), records=Records(zstd)),),
            ),
        ),
    )
    with RawClient(broker.bootstrap) as c:
        resp = c.request(req)
    code = resp.responses[0].partition_responses[0].error_code
    assert code == ErrorCode.unsupported_compression_type


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_find_coordinator_names_this_broker_for_groups(broker: BrokerProcess, version: int) -> None:
    from kio.index import load_request_schema

    cls = load_request_schema(10, version)
    if version >= 4:
        req = cls(key_type=i8(0), coordinator_keys=("g1", "g2"))  # type: ignore[call-arg]
    elif version >= 1:
        req = cls(key="g1", key_type=i8(0))  # type: ignore[call-arg]
    else:
        req = cls(key="g1")  # type: ignore[call-arg]
    with RawClient(broker.bootstrap) as c:
        resp = c.request(req)
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    if version >= 4:
        assert [(x.key, x.port, x.error_code) for x in resp.coordinators] == [
            ("g1", port, 0),
            ("g2", port, 0),
        ]
    else:
        assert (resp.error_code, resp.port, resp.node_id) == (0, port, 1)

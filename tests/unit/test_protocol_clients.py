"""Request frames captured from real clients (librdkafka, kafka-python, aiokafka).

See tests/fixtures/clients/README.md for how they were captured. Each file is
one request frame without its size prefix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kio.schema.fetch.v12.request import FetchRequest
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.produce.v9.request import ProduceRequest as ProduceRequestV9

from tidelog.protocol.batch import Compression, check_crc, iter_batches, validate_produce_records
from tidelog.protocol.codec import decode_request
from tidelog.protocol.framing import FrameDecoder, frame
from tidelog.protocol.headers import parse_request_header
from tidelog.protocol.records import Record, decode_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
ALL_FRAMES = sorted(FIXTURES.glob("*.bin"))
PRODUCE_FRAMES = sorted(FIXTURES.glob("*-produce-*.bin"))
CLIENT_TIMESTAMP = 1_700_000_000_000
# What the capture script produced with every client and compression.
PRODUCED = [
    Record(0, CLIENT_TIMESTAMP, b"key-0", b"payment-0 " * 40, (("trace", b"t0"),)),
    Record(1, CLIENT_TIMESTAMP, None, b"payment-1"),
    Record(2, CLIENT_TIMESTAMP, b"key-2", None),
]
API_KEYS = {"produce": 0, "fetch": 1, "metadata": 3, "findcoordinator": 10, "apiversions": 18}
API_KEYS["initproducerid"] = 22


def fixture_name_parts(path: Path) -> tuple[str, str, int, str | None]:
    client, api, version, *rest = path.stem.split("-")
    return client, api, int(version.removeprefix("v")), rest[0] if rest else None


def produce_records(path: Path) -> bytes:
    data = path.read_bytes()
    header, offset = parse_request_header(data)
    request = decode_request(header.api_key, header.api_version, data, offset)
    assert hasattr(request, "topic_data")
    [topic] = request.topic_data
    [partition] = topic.partition_data
    assert (topic.name, partition.index) == ("cap", 0)
    assert partition.records is not None
    return bytes(partition.records)


def test_fixtures_cover_three_clients_and_five_codecs() -> None:
    assert len(ALL_FRAMES) >= 20
    clients = {fixture_name_parts(p)[0] for p in PRODUCE_FRAMES}
    codecs = {fixture_name_parts(p)[3] for p in PRODUCE_FRAMES}
    assert clients == {"confluent", "kafkapython", "aiokafka"}
    assert codecs == {"none", "gzip", "snappy", "lz4", "zstd"}


@pytest.mark.parametrize("path", ALL_FRAMES, ids=lambda p: p.stem)
def test_captured_frame_header_and_body_decode(path: Path) -> None:
    client, api, version, _ = fixture_name_parts(path)
    data = path.read_bytes()
    header, offset = parse_request_header(data)
    assert (header.api_key, header.api_version) == (API_KEYS[api], version)
    assert header.client_id is not None
    assert header.client_id.startswith(client)
    request = decode_request(header.api_key, header.api_version, data, offset)
    assert request.__api_key__ == header.api_key
    assert request.__version__ == header.api_version


@pytest.mark.parametrize("path", ALL_FRAMES, ids=lambda p: p.stem)
def test_captured_frame_survives_framing_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    wire = b"".join(frame([data])) * 2
    decoder = FrameDecoder(max_frame_bytes=len(data))
    frames = []
    for index in range(len(wire)):
        decoder.feed(wire[index : index + 1])
        if (payload := decoder.next_frame()) is not None:
            frames.append(payload)
    assert frames == [data, data]


@pytest.mark.parametrize("path", PRODUCE_FRAMES, ids=lambda p: p.stem)
def test_captured_produce_batches_validate_and_decode(path: Path) -> None:
    codec = fixture_name_parts(path)[3]
    records = produce_records(path)
    [header] = validate_produce_records(records)
    check_crc(records, 0, header)
    assert header.compression is Compression[str(codec).upper()]
    assert header.records_count == 3
    assert decode_records(records) == PRODUCED


def test_librdkafka_writes_raw_snappy_and_java_style_clients_write_xerial() -> None:
    def snappy_section(client: str, version: int) -> bytes:
        return produce_records(FIXTURES / f"{client}-produce-v{version}-snappy.bin")[61:69]

    assert snappy_section("confluent", 9) != b"\x82SNAPPY\x00"
    assert snappy_section("kafkapython", 9) == b"\x82SNAPPY\x00"
    assert snappy_section("aiokafka", 7) == b"\x82SNAPPY\x00"


def test_kafka_python_batches_carry_its_idempotent_producer_id() -> None:
    records = produce_records(FIXTURES / "kafkapython-produce-v9-none.bin")
    header = next(iter_batches(records))[1]
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (1000, 0, 0)


def test_librdkafka_all_topics_metadata_has_trailing_bytes_that_are_ignored() -> None:
    data = (FIXTURES / "confluent-metadata-v12-alltopics.bin").read_bytes()
    header, offset = parse_request_header(data)
    request = decode_request(header.api_key, header.api_version, data, offset)
    assert isinstance(request, MetadataRequest)
    assert request.topics is None
    assert len(data) - offset == 7  # 4 bytes of body, 3 stray bytes


def test_confluent_fetch_v12_asks_for_the_topic_by_name() -> None:
    data = (FIXTURES / "confluent-fetch-v12.bin").read_bytes()
    _header, offset = parse_request_header(data)
    request = decode_request(1, 12, data, offset)
    assert isinstance(request, FetchRequest)
    assert [t.topic for t in request.topics] == ["cap"]
    assert request.topics[0].partitions[0].fetch_offset == 0


def test_produce_v9_fixture_decodes_to_the_v9_schema() -> None:
    data = (FIXTURES / "confluent-produce-v9-none.bin").read_bytes()
    _header, offset = parse_request_header(data)
    request = decode_request(0, 9, data, offset)
    assert isinstance(request, ProduceRequestV9)
    assert request.acks == -1

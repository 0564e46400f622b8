"""The fuzz mutator and frame map: deterministic, bounded, and aimed where they say."""

from __future__ import annotations

import struct

import pytest
from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1
from kio.schema.metadata.v1.request import MetadataRequestTopic as TopicV1
from kio.schema.metadata.v12.request import MetadataRequest as MetadataV12
from kio.schema.metadata.v12.request import MetadataRequestTopic as TopicV12
from kio.schema.types import TopicName

from tests.fuzz.corpus import CorpusFrame, load_corpus
from tests.fuzz.frame_map import Kind, Site, map_request
from tests.fuzz.mutator import (
    MAX_GARBAGE,
    Mutator,
    decode_uvarint,
    encode_at,
    encode_uvarint,
    overlong_uvarint,
)
from tidelog.broker.handlers import HANDLERS
from tidelog.protocol.batch import check_crc, iter_batches
from tidelog.protocol.codec import decode_request, encode_request
from tidelog.protocol.headers import parse_request_header
from tidelog.protocol.produce_request import decode_produce_request

CORPUS = load_corpus()
VERSIONS = {h.api_key: (h.advertised_min_version, h.max_version) for h in HANDLERS}


def payload(request: object) -> bytes:
    return b"".join(encode_request(7, request, "unit"))[4:]  # type: ignore[arg-type]


def v12_two_topics() -> bytes:
    topics = tuple(TopicV12(topic_id=None, name=TopicName(n)) for n in ("ab", "cde"))
    return payload(
        MetadataV12(
            topics=topics,
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )


def test_frame_map_finds_compact_counts_lengths_and_tagged_fields() -> None:
    fmap = map_request(v12_two_topics())
    found = [(s.kind, s.name, s.value) for s in fmap.sites]
    assert (Kind.INT16_LENGTH, "client_id", 4) in found  # legacy even in a flexible header
    assert (Kind.COMPACT_COUNT, "topics", 3) in found  # N+1 for two topics
    assert [v for k, n, v in found if n == "topics.name"] == [3, 4]
    assert (Kind.TAG_COUNT, "header._tagged_fields", 0) in found
    assert sum(k is Kind.TAG_COUNT for k, _, _ in found) == 4  # header, 2 topics, body
    assert fmap.flexible and fmap.end == len(v12_two_topics())


def test_frame_map_finds_legacy_counts_and_lengths() -> None:
    data = payload(MetadataV1(topics=(TopicV1(name=TopicName("xyz")),)))
    fmap = map_request(data)
    assert [(s.kind, s.name, s.value, s.offset) for s in fmap.sites] == [
        (Kind.INT16_LENGTH, "client_id", 4, 8),
        (Kind.INT32_COUNT, "topics", 1, 14),
        (Kind.INT16_LENGTH, "topics.name", 3, 18),
    ]
    assert not fmap.flexible and fmap.end == len(data)


def test_frame_map_stops_before_trailing_bytes() -> None:
    data = v12_two_topics()
    assert map_request(data + b"\x00\x01\x02").end == len(data)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**21, 2**32 - 1])
def test_uvarint_round_trips_plain_and_overlong(value: int) -> None:
    assert decode_uvarint(encode_uvarint(value)) == (value, len(encode_uvarint(value)))
    for width in (5, 6, 10):
        wide = overlong_uvarint(value, width)
        assert decode_uvarint(wide) == (value, max(width, len(encode_uvarint(value))))


def test_encode_at_writes_each_site_in_its_own_encoding() -> None:
    def site(kind: Kind, width: int) -> Site:
        return Site(0, width, kind, 0)

    assert encode_at(site(Kind.INT16_LENGTH, 2), -1) == b"\xff\xff"
    assert encode_at(site(Kind.INT16_LENGTH, 2), 0x7FFFFFFF) == b"\xff\xff"  # wraps, as C would
    assert encode_at(site(Kind.INT32_COUNT, 4), 2**31 - 1) == b"\x7f\xff\xff\xff"
    assert encode_at(site(Kind.COMPACT_COUNT, 1), 0) == b"\x00"  # compact null
    assert encode_at(site(Kind.COMPACT_COUNT, 1), 0xFFFFFFFF) == b"\xff\xff\xff\xff\x0f"
    assert encode_at(site(Kind.INT, 8), -(2**63)) == b"\x80" + b"\x00" * 7


def test_same_seed_and_index_give_the_same_frame() -> None:
    one, two = Mutator(CORPUS, 5, VERSIONS), Mutator(CORPUS, 5, VERSIONS)
    assert [one.mutant(i) for i in range(500)] == [two.mutant(i) for i in range(500)]
    assert one.mutant(12_345) == two.mutant(12_345)  # without the ones before it


def test_another_seed_gives_other_frames() -> None:
    one, two = Mutator(CORPUS, 5, VERSIONS), Mutator(CORPUS, 6, VERSIONS)
    same = sum(one.mutant(i).wire == two.mutant(i).wire for i in range(500))
    assert same < 50


def test_frames_take_turns_through_the_corpus() -> None:
    mutator = Mutator(CORPUS, 1, VERSIONS)
    assert [mutator.mutant(i).source for i in range(len(CORPUS))] == [f.name for f in CORPUS]


def test_a_run_uses_every_kind_of_mutation_and_stays_small() -> None:
    mutator = Mutator(CORPUS, 1, VERSIONS)
    mutants = [mutator.mutant(i) for i in range(20_000)]
    labels = " | ".join(m.label for m in mutants)
    for what in (
        "flipped bits",
        "inserted",
        "deleted",
        "truncated",
        "size prefix kept",
        "garbage bytes appended",
        "set to null",
        "set to 4294967295",  # 2^32-1 as a compact count: 2^32-2 entries
        "set to 2147483647",
        "set to -2",
        "overlong",
        "6+ bytes",
        "unterminated",
        "tagged field count",
        "+ tag 0 of size 4294967295",
        "+ tag 0 of 3 bytes",
        "api_version",
        "size prefix -1 ",
        "size prefix 104857600",
        "content 0 bytes",
        "content 250 bytes",
        "copies of element",
        "dropped element",
        "batch producer_id set to",
        "batch records_count and last_offset_delta set to",
        "record byte",
    ):
        assert what in labels, what
    # Ten more copies of the largest element, or a 1000-character name, at most.
    largest = max(len(f.payload) for f in CORPUS)
    assert max(len(m.wire) for m in mutants) <= 4 + 11 * largest + 1000 + MAX_GARBAGE
    assert all(m.wire != b"" for m in mutants)
    assert 0.02 < sum(not m.complete for m in mutants) / len(mutants) < 0.2


def test_complete_means_the_size_prefix_is_the_payload_length() -> None:
    mutator = Mutator(CORPUS, 3, VERSIONS)
    for m in (mutator.mutant(i) for i in range(2_000)):
        (declared,) = struct.unpack_from(">i", m.wire)
        assert m.complete == (declared == len(m.wire) - 4)


def test_a_null_mutation_writes_the_null_marker_at_its_site() -> None:
    frame = CorpusFrame("unit", 3, 12, v12_two_topics())
    mutator = Mutator([frame], 9, VERSIONS)
    nulls = [m for m in (mutator.mutant(i) for i in range(400)) if "set to null" in m.label]
    assert nulls
    for m in nulls:
        offset = int(m.label.split("@")[1].split()[0])
        marker = m.wire[4 + offset : 4 + offset + 2]
        assert marker[:1] == b"\x00" or marker == b"\xff\xff", m.label


def test_an_empty_corpus_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        Mutator([], 1, VERSIONS)


@pytest.mark.parametrize("kind", ["content", "element"])
def test_string_and_element_mutations_keep_the_frame_well_formed(kind: str) -> None:
    mutator = Mutator(CORPUS, 4, VERSIONS)
    mutants = [m for m in (mutator.mutant(i) for i in range(6_000)) if f" {kind} " in m.label]
    mutants = [m for m in mutants if "flipped" not in m.label]  # no blind bits stacked on
    assert len(mutants) > 100
    for m in mutants:
        payload = m.wire[4:]
        header, offset = parse_request_header(payload)
        if header.api_key == 0 and header.api_version < 3:
            continue  # no schema to check against
        map_request(payload)  # raises on a frame that is not well-formed
        request = decode_request(header.api_key, header.api_version, payload, offset)
        assert request.__api_key__ == header.api_key, m.label


def test_a_batch_mutation_leaves_a_crc_the_broker_accepts() -> None:
    mutator = Mutator([f for f in CORPUS if f.api_key == 0 and f.api_version >= 3], 8, VERSIONS)
    mutants = [m for m in (mutator.mutant(i) for i in range(3_000)) if "crc made right" in m.label]
    outside_crc = ("batch_length", "base_offset", "partition_leader_epoch", "flipped")
    checked = 0
    for m in mutants:
        if any(word in m.label for word in outside_crc):
            continue
        payload = m.wire[4:]
        header, offset = parse_request_header(payload)
        request = decode_produce_request(payload, offset, header.api_version)
        for _, partitions in request.topics:
            for _, records in partitions:
                assert records is not None
                for position, batch in iter_batches(records):
                    check_crc(records, position, batch)  # raises on a mismatch
                    checked += 1
    assert checked > 50

"""The fuzz corpus: every frame is the valid request its name says, every advertised
version has one, and the frame map walks each one exactly as far as kio reads it."""

from __future__ import annotations

import pytest
from kio.serial import entity_reader

from tests.fuzz.corpus import API_KEYS, FIXTURES, CorpusFrame, load_corpus
from tests.fuzz.frame_map import map_request
from tidelog.broker.handlers import HANDLERS
from tidelog.protocol.codec import decode_request, request_schema
from tidelog.protocol.headers import parse_request_header

CORPUS = load_corpus()
REQUESTS = [f for f in CORPUS if (FIXTURES / "requests" / f"{f.name}.bin").is_file()]
NO_SCHEMA = {"synth-produce-v0", "synth-produce-v1", "synth-produce-v2"}


def advertised() -> set[tuple[int, int]]:
    return {
        (h.api_key, v) for h in HANDLERS for v in range(h.advertised_min_version, h.max_version + 1)
    }


def test_the_corpus_has_a_frame_for_every_advertised_api_version() -> None:
    assert advertised() - {(f.api_key, f.api_version) for f in CORPUS} == set()


def test_every_source_is_in_the_corpus() -> None:
    sources = {f.name.split("-", 1)[0] for f in REQUESTS}
    assert sources == {"confluent", "kafkapython", "aiokafka", "kafkajs", "synth"}


@pytest.mark.parametrize("frame", REQUESTS, ids=lambda f: f.name)
def test_captured_frame_is_the_request_its_name_says(frame: CorpusFrame) -> None:
    source, api, version = frame.name.split("-")
    header, offset = parse_request_header(frame.payload)
    assert (header.api_key, header.api_version) == (API_KEYS[api], int(version[1:]))
    assert header.client_id is not None
    assert source in header.client_id
    if frame.name not in NO_SCHEMA and (frame.api_key, frame.api_version) in advertised():
        request = decode_request(header.api_key, header.api_version, frame.payload, offset)
        assert (request.__api_key__, request.__version__) == (header.api_key, header.api_version)


@pytest.mark.parametrize("frame", CORPUS, ids=lambda f: f.name)
def test_frame_map_ends_where_kio_stops_reading(frame: CorpusFrame) -> None:
    fmap = map_request(frame.payload)
    _, body_offset = parse_request_header(frame.payload)
    assert fmap.body_offset == body_offset
    if frame.name in NO_SCHEMA:
        assert fmap.end == len(frame.payload)
        return
    _, size = entity_reader(request_schema(frame.api_key, frame.api_version))(
        frame.payload, body_offset
    )
    assert fmap.end == body_offset + size
    assert all(s.offset + s.width <= fmap.end for s in fmap.sites)

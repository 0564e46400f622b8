"""Properties of the pre-decode guard, for every (api_key, api_version) the broker serves.

* Valid encodings are accepted, to their last byte; a cut anywhere is refused.
* A count or length beyond the bytes left, or a null the schema forbids, is
  refused at that very field, whatever came before it.
* Whatever the guard accepts -- valid bodies and random mutations of them --
  kio decodes in a child process whose address space is capped a little above
  its start-up size: an over-allocation kills the child and fails the test
  instead of the run, and a ``None`` where kio's annotation forbids one fails
  it too.

Deterministic (``derandomize``) and small: a few examples per schema.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.unit import kio_strategies  # noqa: F401  (registers Records and i64Timedelta)
from tests.unit.decode_worker import KIO, DecodeWorker
from tests.unit.wire_bodies import (
    Choice,
    Chooser,
    FieldPath,
    body,
    compact_length,
    element_min_size,
    length_prefix,
    paths,
    request_frame,
)
from tidelog.broker.handlers import HANDLERS
from tidelog.protocol.body_guard import body_guard
from tidelog.protocol.codec import encode_request, request_schema
from tidelog.protocol.errors import DecodeError
from tidelog.protocol.headers import parse_request_header


def served_schemas() -> list[tuple[int, int]]:
    served = []
    for handler in HANDLERS:
        for version in range(handler.min_version, handler.max_version + 1):
            request_schema(handler.api_key, version)  # every one has a schema (kio's or legacy)
            served.append((handler.api_key, version))
    return served


SERVED = served_schemas()
SERVED_IDS = [f"{api_key}-v{version}" for api_key, version in SERVED]
PROPERTY = settings(
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def schema(api_key: int, api_version: int) -> type[Any]:
    return request_schema(api_key, api_version)


@pytest.fixture(scope="module")
def worker() -> Iterator[DecodeWorker]:
    child = DecodeWorker()
    yield child
    child.close()


def valid_frame(data: st.DataObject, api_key: int, api_version: int) -> tuple[bytes, int]:
    """A request kio encodes from hypothesis-drawn values, and its body offset."""
    request = data.draw(st.from_type(schema(api_key, api_version)))
    frame = b"".join(encode_request(7, request, "guard"))[4:]
    return frame, parse_request_header(frame)[1]


def drawn_values(data: st.DataObject) -> Chooser:
    """Random bytes for every value the wire writer asks about; few, short elements."""

    def choose(kind: str, path: str) -> Choice:
        if kind.startswith("fixed:"):
            size = int(kind.removeprefix("fixed:"))
            return Choice(data=data.draw(st.binary(min_size=size, max_size=size)))
        null = data.draw(st.booleans())
        if kind == "array":
            return Choice(elements=data.draw(st.integers(0, 2)), null=null)
        if kind == "struct":
            return Choice(null=null)
        return Choice(data=data.draw(st.binary(max_size=6)), null=null)

    return choose


@pytest.mark.parametrize(("api_key", "api_version"), SERVED, ids=SERVED_IDS)
@PROPERTY
@given(data=st.data())
def test_a_valid_encoding_is_accepted_to_its_last_byte_and_refused_when_cut(
    data: st.DataObject, api_key: int, api_version: int
) -> None:
    guard = body_guard(schema(api_key, api_version))
    frame, offset = valid_frame(data, api_key, api_version)
    assert guard(frame, offset) == len(frame)
    assert guard(frame + b"\x01\x00\x00", offset) == len(frame)  # trailing bytes are left
    written = body(schema(api_key, api_version), choose=drawn_values(data))
    assert guard(written, 0) == len(written)
    if len(frame) > offset:
        cut = data.draw(st.integers(offset, len(frame) - 1), label="cut")
        with pytest.raises(DecodeError):
            guard(frame[:cut], offset)


def poison(data: st.DataObject, kio_schema: type[Any], target: FieldPath, left: int) -> bytes:
    """A count or length for ``target`` that ``left`` bytes cannot hold, or a forbidden null."""
    if not target.nullable and data.draw(st.booleans(), label="null"):
        return length_prefix(target.kind, target.flexible, None)
    extra = data.draw(st.integers(0, 2**20) | st.just(2**30), label="extra")
    if target.kind == "array":
        count = left // element_min_size(kio_schema, target.path) + 1 + extra
        count = min(count, 2**31 - 1)
        if target.flexible:
            return compact_length(count)
        return struct.pack(">i", count)
    length = left + 1 + extra
    if target.flexible:
        return compact_length(length)
    if target.kind == "string":
        return struct.pack(">h", min(length, 2**15 - 1))
    return struct.pack(">i", min(length, 2**31 - 1))


@pytest.mark.parametrize(("api_key", "api_version"), SERVED, ids=SERVED_IDS)
@PROPERTY
@given(data=st.data())
def test_a_count_or_length_beyond_the_bytes_left_is_refused_at_that_field(
    data: st.DataObject, api_key: int, api_version: int
) -> None:
    kio_schema = schema(api_key, api_version)
    targets = paths(kio_schema)
    if not targets:
        return  # ListGroups v0-3, ApiVersions v0-2, ...: nothing to count
    target = data.draw(st.sampled_from(targets), label="target")
    tail = data.draw(st.binary(max_size=64), label="tail")
    bad = poison(data, kio_schema, target, len(tail))
    wire = body(kio_schema, target.path, bad, drawn_values(data), end_after_replacement=True)
    with pytest.raises(DecodeError) as refused:
        body_guard(kio_schema)(wire + tail, 0)
    # The frame ends right after the poison, so an array on the way there may
    # already be refused for the element it cannot hold: that is the same fault.
    message = str(refused.value)
    fields = {".".join(target.path[:depth]) for depth in range(1, len(target.path) + 1)}
    named = message.split(" field=", 1)[1].split(" ", 1)[0]
    assert named in fields, message
    assert (
        "array count the bytes left cannot hold" in message
        or (named == ".".join(target.path) and "length past the end" in message)
        or (named == ".".join(target.path) and "null where the schema forbids null" in message)
    ), message


def mutate(data: st.DataObject, frame: bytes, offset: int) -> bytes:
    """One to three edits of the body: bytes set to edge values, varints, cuts."""
    out = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        if len(out) <= offset:
            break
        at = data.draw(st.integers(offset, len(out) - 1), label="at")
        edit = data.draw(st.sampled_from(["set", "insert", "cut"]), label="edit")
        if edit == "set":
            out[at] = data.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]))
        elif edit == "insert":
            out[at:at] = data.draw(
                st.sampled_from(
                    [b"\xff\xff\xff\xff\x0f", b"\x7f\xff\xff\xff", b"\xff\xff", b"\x80\x80\x80\x80"]
                )
            )
        else:
            del out[at:]
    return bytes(out)


# No shrinking: every step of it would start a new child after a dead one, and the
# first failing frame (printed in hex) already says what kio could not survive.
@pytest.mark.parametrize(("api_key", "api_version"), SERVED, ids=SERVED_IDS)
@settings(PROPERTY, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(data=st.data())
def test_whatever_the_guard_accepts_kio_decodes_without_a_huge_allocation(
    worker: DecodeWorker, data: st.DataObject, api_key: int, api_version: int
) -> None:
    guard = body_guard(schema(api_key, api_version))
    frame, offset = valid_frame(data, api_key, api_version)
    written = request_frame(
        api_key, api_version, body(schema(api_key, api_version), choose=drawn_values(data))
    )
    written_offset = parse_request_header(written)[1]
    candidates = [frame, written, mutate(data, frame, offset)]
    candidates.append(mutate(data, written, written_offset))
    for candidate in candidates:
        try:
            guard(candidate, parse_request_header(candidate)[1])
        except DecodeError:
            continue
        outcome = worker.decode(candidate, KIO)
        assert outcome.kind in ("decoded", "error"), (outcome, candidate.hex())

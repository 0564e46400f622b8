"""Hostile bytes against the real broker: a seeded, bounded fuzz of request frames.

Every frame of the corpus (tests/fuzz/corpus.py: captured from real clients, plus one
built with kio for each advertised version no client sends) is mutated by
tests/fuzz/mutator.py, FRAMES frames in all, sent over TCP from LANES connections at
once. After each mutated frame a lane sends a valid ApiVersions request (the sentinel)
on the same connection: its answer says the broker is done with the mutated frame and
kept the connection; a close says it dropped it; either way the lane goes on,
reconnecting when needed. A frame whose size prefix lies (the broker would wait for
bytes that never come) is the last on its connection: the lane half-closes and reads
to the end. Every response to a mutated frame must decode as an answer to it.
Meanwhile a well-behaved client does ApiVersions, Metadata, Produce and Fetch round
trips and checks every answer.

At the end the broker must be alive and still serving; its peak RSS must have stayed
within RSS_BOUND_MB of where it started; it must stop cleanly, its log must hold no
traceback, and it must start again on what the fuzz left behind with the good
client's records intact.

One broker, with topic auto-creation on (the default): mutated topic names then reach
the create path and its name checks too, and a request that may not auto-create
still takes the plain lookup path, so this covers more than `--no-auto-create-topics`.

Set TIDELOG_FUZZ_SEED to replay a run, TIDELOG_FUZZ_ONLY=i,j,... to send only those
frames of it; every frame can be rebuilt from the seed and its index alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvloop
from kio.schema.api_versions.v0.request import ApiVersionsRequest as ApiVersionsV0
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName

from tests.fuzz.corpus import load_corpus
from tests.fuzz.mutator import Mutant, Mutator
from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, fetch_request, produce_request
from tests.integration.test_clients import create_topic
from tidelog.protocol.codec import decode_response, encode_request
from tidelog.protocol.errors import DecodeError, ErrorCode, UnsupportedRequest
from tidelog.protocol.records import Record, build_batch, decode_records

pytestmark = pytest.mark.integration

DEFAULT_SEED = 20_240_611
FRAMES = 20_000
LANES = 16
# Waiting is legitimate for some requests (a JoinGroup waiting for the rest of its
# group, a long-poll Fetch): a lane whose connection shows no progress for this long
# closes it and goes on. It never fails the test; it only bounds one lane's wait.
STALL_S = 1.0
# The fuzzer never has more than LANES connections open and sends frames of at most a
# few KiB, so what the broker legitimately holds for it is LANES x (one frame and a
# connection's read buffer) -- a few MB -- plus the state the mutated requests create:
# a hundred topics, groups and offsets, some tens of MB (a run with every fix in
# grew about 25 MB). 96 MB leaves room for that several times over and is still less
# than one 100 MiB buffer allocated for a size prefix that only announced it.
RSS_BOUND_MB = 96
# The broker's address space is capped this far above its size at start, so that a
# runaway allocation fails inside the broker (and fails the test) instead of taking
# the memory of the whole machine.
ADDRESS_SPACE_HEADROOM = 2 << 30
GOOD_TOPIC = "fuzz-bystander"
API_VERSIONS = 18
SENTINEL_BASE = 0x5E000000  # sentinel correlation ids: far from any in the corpus
# The broker's log names a failed connection's peer (and, for a handler, its API).
PEER = re.compile(r"peer=127\.0\.0\.1:(\d+)")
API = re.compile(r"api_key=(-?\d+) api_version=(-?\d+)")
NATIVE_FRAME = re.compile(r"^\s+(\d+: |at )")  # a native stack trace's lines


def seed() -> int:
    return int(os.environ.get("TIDELOG_FUZZ_SEED", DEFAULT_SEED))


def frame_indexes() -> list[int]:
    only = os.environ.get("TIDELOG_FUZZ_ONLY", "").strip()
    return [int(i) for i in only.split(",")] if only else list(range(FRAMES))


# -- the broker process, from /proc -----------------------------------------------------


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def limit_address_space(pid: int) -> None:
    limit = status_kb(pid, "VmSize") * 1024 + ADDRESS_SPACE_HEADROOM
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))


class BrokerDied(Exception):
    pass


class RssExceeded(Exception):
    def __str__(self) -> str:
        return f"{self.args[0]} (bound {RSS_BOUND_MB} MB)"


@dataclass
class Tally:
    pid: int
    start_rss_kb: int
    sent: int = 0
    answered: int = 0  # mutated frames after which the sentinel was answered
    responses: int = 0  # responses to mutated frames
    closed: int = 0  # connections the broker closed
    connections: int = 0
    max_rss_kb: int = 0  # the largest VmRSS sampled
    peak_rss_kb: int = 0  # VmHWM: the peak, between samples too
    stalled: list[int] = field(default_factory=list)  # frames after which a lane gave up
    # local port -> the frames after which the broker closed a connection from it
    closed_after: dict[int, list[int]] = field(default_factory=dict)
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=4 * LANES))  # frames sent
    bad_responses: list[tuple[int, str]] = field(default_factory=list)  # (frame, why)

    def sample(self) -> None:
        """Raise BrokerDied or RssExceeded at once: either ends the run."""
        try:
            rss, peak = status_kb(self.pid, "VmRSS"), status_kb(self.pid, "VmHWM")
        except (FileNotFoundError, ProcessLookupError, AssertionError):
            raise BrokerDied("the broker process is gone") from None
        self.max_rss_kb, self.peak_rss_kb = max(self.max_rss_kb, rss), max(self.peak_rss_kb, peak)
        if self.grown_mb > RSS_BOUND_MB:
            raise RssExceeded(f"broker peak RSS grew {self.grown_mb:.0f} MB")

    @property
    def grown_mb(self) -> float:
        return (self.peak_rss_kb - self.start_rss_kb) / 1024


@dataclass(frozen=True)
class Versions:
    """What the broker advertised: how its answer to a request must decode."""

    ranges: dict[int, tuple[int, int]]

    def check_response(self, mutant: Mutant, frame: bytes) -> str:
        """Why `frame` is not a valid answer to the mutated request ("" if it is)."""
        api_key, api_version, correlation = struct.unpack_from(">hhi", mutant.wire, 4)
        low, high = self.ranges.get(api_key, (0, -1))
        if api_key == API_VERSIONS and not low <= api_version <= high:
            api_version = 0  # a version it does not know is answered in v0
        try:
            answered, _ = decode_response(api_key, api_version, frame)
        except (DecodeError, UnsupportedRequest) as exc:
            return f"response does not decode as api_key={api_key} v{api_version}: {exc}"
        if answered != correlation:
            return f"response correlation_id={answered} to a request with {correlation}"
        return ""


def advertised(broker: BrokerProcess) -> dict[int, tuple[int, int]]:
    with RawClient(broker.bootstrap) as c:
        resp = c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    return {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}


def sentinel_frame(correlation: int) -> bytes:
    return b"".join(encode_request(correlation, ApiVersionsV0(), "fuzz-sentinel"))


# -- the fuzzing connections -----------------------------------------------------------


class Lane:
    """One fuzzing connection at a time; frames from a queue the lanes share."""

    def __init__(self, number: int, port: int, tally: Tally, versions: Versions) -> None:
        self.number = number
        self.broker_port = port
        self.tally = tally
        self.versions = versions
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.port = 0

    async def run(self, mutator: Mutator, queue: list[int]) -> None:
        try:
            while queue:
                await self.one(mutator.mutant(queue.pop()))
        finally:
            self.close()

    async def one(self, mutant: Mutant) -> None:
        if self.writer is None:
            await self.connect()
        assert self.writer is not None
        tally = self.tally
        tally.recent.append(mutant.index)
        tally.sent += 1
        try:
            if mutant.complete:
                sentinel = SENTINEL_BASE + mutant.index
                self.writer.write(mutant.wire + sentinel_frame(sentinel))
                answered = await asyncio.wait_for(self.until(mutant, sentinel), STALL_S)
            else:
                self.writer.write(mutant.wire)
                self.writer.write_eof()
                answered = await asyncio.wait_for(self.until(mutant, None), STALL_S)
        except TimeoutError:
            tally.stalled.append(mutant.index)
            self.close()
            return
        finally:
            if tally.sent % 20 == 0:
                tally.sample()
        if answered:
            tally.answered += 1
        else:
            tally.closed += 1
            tally.closed_after.setdefault(self.port, []).append(mutant.index)
            self.close()

    async def until(self, mutant: Mutant, sentinel: int | None) -> bool:
        """Read responses until the sentinel's (True) or the end (False); every other
        one must be a valid answer to the mutated request."""
        assert self.reader is not None
        try:
            while True:
                (size,) = struct.unpack(">i", await self.reader.readexactly(4))
                frame = await self.reader.readexactly(size)
                if sentinel is not None and struct.unpack_from(">i", frame)[0] == sentinel:
                    return True
                self.tally.responses += 1
                if problem := self.versions.check_response(mutant, frame):
                    self.tally.bad_responses.append((mutant.index, problem))
        except (asyncio.IncompleteReadError, ConnectionError):
            return False

    async def connect(self) -> None:
        try:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except ConnectionError as exc:
            raise BrokerDied(f"cannot connect: {exc}") from None
        self.port = self.writer.get_extra_info("sockname")[1]
        self.tally.connections += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


async def fuzz(
    port: int, mutator: Mutator, tally: Tally, versions: Versions, indexes: list[int]
) -> None:
    queue = list(reversed(indexes))
    lanes = [Lane(n, port, tally, versions) for n in range(LANES)]
    await asyncio.gather(*(lane.run(mutator, queue) for lane in lanes))


# -- the well-behaved client -----------------------------------------------------------


class GoodClient(threading.Thread):
    """ApiVersions, Metadata, Produce and Fetch round trips, each answer checked."""

    def __init__(self, broker: BrokerProcess, tally: Tally) -> None:
        super().__init__(daemon=True)
        self.broker = broker
        self.tally = tally
        self.stop = threading.Event()
        self.served = threading.Event()  # one round trip done: the fuzz may begin
        self.progress: list[int] = []  # tally.sent when each round trip completed
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with RawClient(self.broker.bootstrap, timeout=60) as client:
                while not self.stop.is_set():
                    round_trip(client, len(self.progress))
                    self.progress.append(self.tally.sent)
                    self.served.set()
        except BaseException as exc:
            self.error = exc


def good_value(n: int) -> bytes:
    return b"good-%d" % n


def round_trip(client: RawClient, n: int) -> None:
    versions = client.request(
        ApiVersionsRequest(client_software_name="good", client_software_version="1")
    )
    assert versions.error_code == ErrorCode.none
    metadata = client.request(
        MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=TopicName(GOOD_TOPIC)),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )
    assert [(t.name, t.error_code) for t in metadata.topics] == [(GOOD_TOPIC, 0)]
    batch = build_batch([Record(0, 1_700_000_000_000 + n, b"k", good_value(n))])
    produced = client.request(produce_request(GOOD_TOPIC, 0, batch))
    part = produced.responses[0].partition_responses[0]
    assert (part.error_code, part.base_offset) == (ErrorCode.none, n), part
    assert good_records(client, n) == [good_value(n)]


def good_records(client: RawClient, offset: int) -> list[bytes | None]:
    fetched = client.request(fetch_request(GOOD_TOPIC, [(0, offset)]))
    data = fetched.responses[0].partitions[0]
    assert data.error_code == ErrorCode.none, data
    return [r.value for r in decode_records(bytes(data.records or b""))]


# -- telling what went wrong -----------------------------------------------------------


def tracebacks(log: str) -> list[str]:
    """Each traceback in the log with the line before it (which names the peer)."""
    lines = log.splitlines()
    return [
        "\n".join(lines[max(0, i - 1) : i + 12])
        for i, line in enumerate(lines)
        if line.startswith("Traceback")
    ]


def culprits(tally: Tally, mutator: Mutator, context: str) -> str:
    """The frames after which the broker closed the connection that context names."""
    out = []
    api = API.search(context)
    for port in PEER.findall(context)[:1]:
        for index in tally.closed_after.get(int(port), []):
            m = mutator.mutant(index)
            # A port serves many connections in a run: the API the log names picks one.
            if api is None or struct.unpack_from(">hh", m.wire, 4) == tuple(map(int, api.groups())):
                out.append(describe(m))
    return "\n".join(out) or "  (no frame of the fuzz is known to have used that connection)"


def diagnose(data_dir: Path, candidates: list[Mutant]) -> str:
    """Replay the candidates one at a time against a fresh broker: the one that raises
    its peak RSS the most, and the first that kills it."""
    found: list[str] = []
    growth: list[tuple[int, Mutant]] = []
    with BrokerProcess(data_dir) as fresh:
        assert fresh.proc is not None
        limit_address_space(fresh.proc.pid)  # as the fuzzed one: the same allocations fail
        lane = Lane(0, fresh.port, Tally(fresh.proc.pid, 1 << 40), Versions(advertised(fresh)))
        for m in candidates:
            before = status_kb(fresh.proc.pid, "VmHWM")
            if not asyncio.run(replay_one(lane, m)):
                fresh.kill()
                found.append(f"this frame kills a fresh broker on its own:\n{describe(m)}")
                break
            growth.append((status_kb(fresh.proc.pid, "VmHWM") - before, m))
    grown, top = max(growth, key=lambda g: g[0], default=(0, None))
    if top is not None and grown > 10 << 10:
        found.insert(0, f"this frame alone raises a fresh broker's peak RSS {grown >> 10} MB:")
        found.insert(1, describe(top))
    if found:
        return "\n".join(found)
    shown = "\n".join(describe(m) for m in candidates)
    return f"none of these kills a fresh broker or grows it on its own:\n{shown}"


async def replay_one(lane: Lane, mutant: Mutant) -> bool:
    """Send one frame; True while the broker still answers afterwards."""
    with contextlib.suppress(BrokerDied):
        await lane.one(mutant)
    lane.close()
    return await answers(lane.broker_port)


async def answers(port: int) -> bool:
    """True when the broker answers an ApiVersions request on a new connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionError:
        return False
    try:
        writer.write(sentinel_frame(1))
        head = await reader.readexactly(8)
        return bool(struct.unpack_from(">i", head, 4)[0] == 1)
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    finally:
        writer.transport.abort()


def log_tail(log: str, lines: int = 12) -> str:
    """The last lines of the log, less a native stack trace's frames."""
    kept = [line for line in log.splitlines() if not NATIVE_FRAME.match(line)]
    return "\n".join(kept[-lines:])


def describe(m: Mutant) -> str:
    return f"  frame {m.index} from {m.source}: {m.label}\n    {m.wire.hex()}"


# -- the test --------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data")
    with proc:
        create_topic(proc, GOOD_TOPIC)
        yield proc


def test_mutated_requests_of_every_advertised_version_leave_the_broker_serving(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    run_seed = seed()
    print(f"\nfuzz seed={run_seed} (replay: TIDELOG_FUZZ_SEED={run_seed})")
    versions = advertised(broker)
    corpus = load_corpus()
    wanted = {(k, v) for k, (lo, hi) in versions.items() for v in range(lo, hi + 1)}
    missing = wanted - {(f.api_key, f.api_version) for f in corpus}
    assert not missing, f"no corpus frame for (api_key, version) {sorted(missing)}"
    mutator = Mutator(corpus, run_seed, versions)
    assert broker.proc is not None
    pid = broker.proc.pid
    limit_address_space(pid)
    tally = Tally(pid, status_kb(pid, "VmRSS"))
    tally.sample()

    good = GoodClient(broker, tally)
    good.start()
    assert good.served.wait(60), f"the good client got no answer: {good.error!r}"
    indexes = frame_indexes()
    stopped_by: BrokerDied | RssExceeded | None = None
    began, cpu_before, own_before = time.monotonic(), cpu_s(pid), time.process_time()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(fuzz(broker.port, mutator, tally, Versions(versions), indexes))
        tally.sample()
    except (BrokerDied, RssExceeded) as exc:
        stopped_by = exc
    elapsed, own_cpu = time.monotonic() - began, time.process_time() - own_before
    alive = broker.proc.poll() is None
    broker_cpu = f"{cpu_s(pid) - cpu_before:.1f}s" if alive else "?"
    good.stop.set()
    good.join(120)
    print(
        f"fuzz: {tally.sent} frames in {elapsed:.1f}s (CPU: broker {broker_cpu},"
        f" fuzzer and good client {own_cpu:.1f}s) over {tally.connections} connections;"
        f" {tally.closed} closed by the broker, {len(tally.stalled)} given up;"
        f" {tally.answered} frames followed by an answered sentinel,"
        f" {tally.responses} responses to mutated frames;"
        f" broker RSS {tally.start_rss_kb // 1024} MB at start, {tally.max_rss_kb // 1024} MB"
        f" at most when sampled, peak {tally.peak_rss_kb // 1024} MB;"
        f" good client: {len(good.progress)} round trips"
    )

    if stopped_by is not None or not alive:
        recent = [mutator.mutant(i) for i in sorted({*tally.recent, *tally.stalled[-LANES:]})]
        why = f"the broker died code={broker.proc.returncode}" if not alive else stopped_by
        pytest.fail(
            f"{why} seed={run_seed}\n{diagnose(tmp_path / 'replay', recent)}\n"
            f"broker log (tail):\n{log_tail(broker.output())}"
        )
    if tally.bad_responses:
        index, why = tally.bad_responses[0]
        pytest.fail(
            f"{len(tally.bad_responses)} invalid responses seed={run_seed}; the first: {why}\n"
            f"{describe(mutator.mutant(index))}"
        )
    assert good.error is None, f"the good client failed: {good.error!r} seed={run_seed}"
    assert tally.sent == len(indexes)
    if len(indexes) >= 1000:  # served throughout: a round trip within every tenth of the run
        tenths = {min(9, 10 * sent // len(indexes)) for sent in good.progress}
        assert tenths == set(range(10)), f"good client starved: served in tenths {sorted(tenths)}"
    produced = len(good.progress) + 1
    with RawClient(broker.bootstrap) as client:
        round_trip(client, len(good.progress))  # and still served after

    assert broker.stop() == 0, log_tail(broker.output())
    found = tracebacks(broker.output())
    if found:
        pytest.fail(
            f"{len(found)} tracebacks in the broker log seed={run_seed}; the first:\n{found[0]}\n"
            f"frame(s) that connection was closed after:\n{culprits(tally, mutator, found[0])}"
        )
    broker.log_path.rename(broker.log_path.with_suffix(".fuzzed.log"))
    with BrokerProcess(broker.data_dir) as again, RawClient(again.bootstrap) as client:
        stored: list[bytes | None] = []
        while len(stored) < produced and (more := good_records(client, len(stored))):
            stored += more
        assert stored == [good_value(n) for n in range(produced)]

"""What hostile connections cost the real broker, and the limits that hold them.

Each test starts the real `tidelog serve` and misbehaves over TCP the way issue 11
found it could be hurt: size prefixes that announce 100 MiB, clients that never read,
connections that sit idle or stall halfway through a request, too many connections,
a TLS client on the plaintext port, a flood of bad frames. RSS is read from
/proc/<pid>/status; every bound below is far above what the fixed broker uses and far
below what the unfixed one did (see each test).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient
from tidelog.protocol.codec import encode_request
from tidelog.protocol.errors import ErrorCode

pytestmark = pytest.mark.integration

WAIT_S = 60.0
API_VERSIONS_V0 = struct.pack(">ihhih", 10, 18, 0, 7, -1)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS pid={pid}")


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += fd.readlink().name.startswith("socket:")
        except OSError:
            continue
    return count


def busy_ticks(pid: int, seconds: float) -> int:
    """CPU clock ticks the process used over `seconds`."""

    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    before = ticks()
    time.sleep(seconds)
    return ticks() - before


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def served(broker: BrokerProcess, source: str | None = None) -> bool:
    """An ApiVersions round trip on a fresh connection (optionally from `source`)."""
    host, port = broker.bootstrap.rsplit(":", 1)
    try:
        with socket.create_connection(
            (host, int(port)), timeout=10, source_address=(source, 0) if source else None
        ) as sock:
            sock.sendall(API_VERSIONS_V0)
            return len(sock.recv(4)) == 4
    except OSError:
        return False


def connect(broker: BrokerProcess, source: str | None = None) -> socket.socket:
    host, port = broker.bootstrap.rsplit(":", 1)
    return socket.create_connection(
        (host, int(port)), timeout=WAIT_S, source_address=(source, 0) if source else None
    )


def closed_by_broker(sock: socket.socket) -> bool:
    """Blocks (up to WAIT_S) until the broker closes `sock`; False if it never does."""
    try:
        while True:
            if sock.recv(65536) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "data") as b:
        yield b


def test_size_prefixes_alone_do_not_grow_the_broker(broker: BrokerProcess) -> None:
    # Before: each 4-byte prefix announcing 100 MiB made the broker allocate and zero
    # 100 MiB at once (30 connections: +3.1 GB RSS). Now a prefix costs its 4 bytes.
    assert broker.proc is not None
    pid = broker.proc.pid
    base_sockets = open_sockets(pid)
    assert served(broker)
    base_rss = rss_bytes(pid)
    stalled = [connect(broker) for _ in range(30)]
    try:
        for sock in stalled:
            sock.sendall(struct.pack(">i", 100 << 20))
        wait_until(lambda: open_sockets(pid) >= base_sockets + 30, "the broker to accept")
        assert served(broker)  # the prefixes have been read by now: one loop, in order
        added = rss_bytes(pid) - base_rss
        assert added < 50 << 20, f"30 size prefixes added {added / 1e6:.1f} MB of RSS"
    finally:
        for sock in stalled:
            sock.close()


def test_a_client_that_never_reads_its_answers_is_not_read_either(
    broker: BrokerProcess,
) -> None:
    # Before: every pipelined request was answered into the transport's buffer without
    # bound (8,000 unread Metadata answers of ~25 KB: +200 MB RSS, growing with every
    # request sent). Now the broker stops reading from a client whose answers pile up.
    from confluent_kafka.admin import AdminClient, NewTopic

    assert broker.proc is not None
    pid = broker.proc.pid
    names = [f"t{i:03d}-" + "x" * 200 for i in range(100)]  # a ~25 KB Metadata answer
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(60)
    request = MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False
    )
    frames = b"".join(request_frame(request, i) for i in range(8000))
    assert served(broker)
    base_rss = rss_bytes(pid)
    with connect(broker) as greedy:
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        greedy.settimeout(10)
        with contextlib.suppress(TimeoutError):  # the broker stopped reading: the point
            greedy.sendall(frames)
        wait_until(lambda: served(broker), "a bystander to be served")
        wait_until(lambda: busy_ticks(pid, 0.5) <= 2, "the broker to finish what it read")
        added = rss_bytes(pid) - base_rss
        assert added < 100 << 20, f"an unread client added {added / 1e6:.1f} MB of RSS"
    assert served(broker)


def request_frame(request: object, correlation: int) -> bytes:
    return b"".join(encode_request(correlation, request, "greedy"))  # type: ignore[arg-type]


def test_an_idle_connection_and_a_stalled_request_are_closed(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data", args=["--connections-max-idle-ms", "1000"]) as broker:
        idle = connect(broker)
        stalled = connect(broker)
        stalled.sendall(API_VERSIONS_V0[:7])  # half a request, then silence
        busy: RawClient | None = None
        try:
            assert closed_by_broker(idle)
            assert closed_by_broker(stalled)
            # A client that keeps talking stays: every request resets its idle time.
            busy = RawClient(broker.bootstrap)
            started = time.monotonic()
            while time.monotonic() - started < 2.5:
                assert (
                    busy.request(
                        ApiVersionsRequest(client_software_name="t", client_software_version="1")
                    ).error_code
                    == ErrorCode.none
                )
                time.sleep(0.2)
        finally:
            for sock in (idle, stalled):
                sock.close()
            if busy is not None:
                busy.close()
        assert "idle for" in broker.output()


def test_connections_past_the_limits_are_refused_and_others_served(tmp_path: Path) -> None:
    args = ["--max-connections", "4", "--max-connections-per-ip", "2"]
    with BrokerProcess(tmp_path / "data", args=args) as broker:
        first, second = connect(broker), connect(broker)
        try:
            for sock in (first, second):
                sock.sendall(API_VERSIONS_V0)
                assert len(sock.recv(4)) == 4
            third = connect(broker)  # a third from 127.0.0.1
            assert closed_by_broker(third)
            third.close()
            assert served(broker, source="127.0.0.2")  # another address still gets in
            others = [connect(broker, "127.0.0.2"), connect(broker, "127.0.0.3")]
            for sock in others:
                sock.sendall(API_VERSIONS_V0)
                assert len(sock.recv(4)) == 4
            fifth = connect(broker, "127.0.0.4")  # four are open in all
            assert closed_by_broker(fifth)
            fifth.close()
            for sock in others:
                sock.close()
        finally:
            first.close()
            second.close()
        wait_until(lambda: served(broker), "a slot to free up")
        output = broker.output()
        assert "too many connections from one address ip=127.0.0.1" in output
        assert "too many connections open=4 max=4" in output


def test_a_tls_client_on_the_plaintext_port_is_named_in_the_log(
    broker: BrokerProcess,
) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with connect(broker) as raw, pytest.raises((ssl.SSLError, OSError)):
        context.wrap_socket(raw, server_hostname="localhost").do_handshake()
    wait_until(lambda: "looks_like=tls_client_hello" in broker.output(), "the log line")
    assert served(broker)


def test_a_flood_of_bad_frames_writes_a_bounded_number_of_lines(
    broker: BrokerProcess,
) -> None:
    # Before: one line per bad frame (14,176 lines in one fuzz run).
    for _ in range(200):
        with connect(broker) as sock:
            sock.sendall(struct.pack(">i", -5))
            assert closed_by_broker(sock)
    assert served(broker)
    lines = [line for line in broker.output().splitlines() if "negative frame size" in line]
    assert 1 <= len(lines) <= 10, len(lines)

"""What TLS and SASL cost (issue 15): produce and consume throughput over SASL_SSL
against PLAINTEXT on the same run, and connection set-up time with SCRAM-SHA-512.

One tidelog broker (embedded default, wal + local dir) serves a PLAINTEXT and a
SASL_SSL listener for the whole run: a trustme CA and a certificate for 127.0.0.1
made for the run, one user with a SCRAM-SHA-512 credential written by `tidelog users
add` before the broker starts. Each round produces --mb MB over each listener back to
back (the order swapped every round, so machine drift hits both), each into a fresh
topic, with the same confluent-kafka producer as `make bench` (acks=all, linger 5 ms,
1 MiB batches, 6 partitions, 1 KiB values), then reads each topic back over the
listener that wrote it with `make bench`'s consumer; topics are kept until the broker
stops (a run of the defaults writes about 6 GB into its temporary directory). Prints
MB/s per side per round, the medians, each round's SASL_SSL/PLAINTEXT ratio and their
median against the target (>= 0.7x), never asserted.

Then connection set-up: --connections fresh connections per listener, alternating, one
at a time, each timed from connect() to its first Metadata answer: TCP connect and
ApiVersions, and on SASL_SSL a full TLS handshake (no session resumption), SaslHandshake
and SCRAM-SHA-512's two SaslAuthenticate round trips (scramp's client, whose PBKDF2 of
the password is counted, as every client pays it). The connections are made by hand
with Python's socket and ssl, not by librdkafka: a fresh librdkafka client answers its
first Metadata after 1 ms or after about 53 ms, at random, on either listener, which
would hide what TLS and SCRAM cost. Prints p50 and p99 in ms.

    python bench/security.py                  # 7 rounds of 400 MB each side, 200 connections
    python bench/security.py --quick          # 1 round of 20 MB, 20 connections: smoke
    python bench/security.py --rounds 7 --mb 500 --json security.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from scramp import ScramClient

if __package__ in (None, ""):  # run as `python bench/security.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidelog.bench.brokers import PARTITIONS, ROOT, STOP_TIMEOUT_S, create_topic
from tidelog.bench.throughput import VALUE_SIZE, consume, produce
from tidelog.broker.processes import BrokerProcess, free_ports, port_accepts

MB = 1_000_000
TARGET = 0.7
SIDES = ("PLAINTEXT", "SASL_SSL")
MECHANISM = "SCRAM-SHA-512"
USER = "bench"
WARMUP_CONNECTIONS = 5
API_VERSIONS, METADATA, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 3, 17, 36


@dataclass(frozen=True)
class Listeners:
    """The running broker's two listeners and the client settings for each."""

    ports: dict[str, int]
    ca: Path
    password: str

    def config(self, side: str) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": f"127.0.0.1:{self.ports[side]}",
            "security.protocol": side,
        }
        if side == "SASL_SSL":
            config |= {
                "ssl.ca.location": str(self.ca),
                "sasl.mechanisms": MECHANISM,
                "sasl.username": USER,
                "sasl.password": self.password,
            }
        return config


def make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and the broker's certificate for 127.0.0.1: (ca, chain, key) PEM files."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    paths = (directory / "ca.pem", directory / "broker.pem", directory / "broker-key.pem")
    ca.cert_pem.write_to_path(str(paths[0]))
    paths[1].write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(paths[2]))
    return paths


def add_user(data_dir: Path, name: str, password: str) -> None:
    """`tidelog users add` into the broker's bucket, as an operator makes the first user."""
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "users", "add", name,
         "--data-dir", str(data_dir), "--mechanism", MECHANISM],
        input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tidelog users add failed: {done.stderr.strip()}")


@contextlib.contextmanager
def secure_broker(workdir: Path) -> Iterator[Listeners]:
    """One `tidelog serve` with PLAINTEXT (first, the launcher's port) and SASL_SSL."""
    data = workdir / "broker"
    data.mkdir()
    ca, cert, key = make_certs(workdir)
    password = secrets.token_hex(16)
    add_user(data, USER, password)
    ports = dict(zip(SIDES, free_ports(len(SIDES)), strict=True))
    listeners = ",".join(f"{side}://127.0.0.1:{port}" for side, port in ports.items())
    broker = BrokerProcess(
        data,
        port=ports["PLAINTEXT"],
        log_level="warning",
        args=["--listeners", listeners, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        log_path=workdir / "broker.log",
        cwd=ROOT,
    )
    broker.start()
    try:
        deadline = time.monotonic() + 30
        while not port_accepts(ports["SASL_SSL"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the SASL_SSL listener did not open in 30 s")
            time.sleep(0.05)
        yield Listeners(ports, ca, password)
    finally:
        broker.stop(STOP_TIMEOUT_S)


def throughput_round(listeners: Listeners, order: Sequence[str], mb: int) -> dict[str, Any]:
    """MB/s of each side's produce, then of each side's consume, in `order`."""
    plain = listeners.config("PLAINTEXT")["bootstrap.servers"]
    topics = {side: f"security-{side.lower()}-{uuid.uuid4().hex[:6]}" for side in order}
    for topic in topics.values():
        create_topic(plain, topic)
    count = mb * MB // VALUE_SIZE
    figures: dict[str, Any] = {"produce": {}, "consume": {}}
    for side in order:
        config = listeners.config(side)
        seconds = produce(config["bootstrap.servers"], topics[side], count * VALUE_SIZE,
                          config=config)  # fmt: skip
        figures["produce"][side] = count * VALUE_SIZE / MB / seconds
    for side in order:
        config = listeners.config(side)
        seconds = consume(config["bootstrap.servers"], topics[side], count, config=config)
        figures["consume"][side] = count * VALUE_SIZE / MB / seconds
    return figures


def _frame(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    """A request with header v1 (every request here is a non-flexible version)."""
    client_id = b"bench-security"
    header = struct.pack(">hhih", api_key, version, correlation, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


class RawLogin:
    """One Kafka connection made by hand, so its timing is the broker's and the wire's,
    not a client library's scheduling: TCP connect, (TLS), ApiVersions v0, (SaslHandshake
    v1, SaslAuthenticate v1 twice with scramp's client), Metadata v1 for all topics."""

    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners
        self.tls = ssl.create_default_context(cafile=str(listeners.ca))  # one per client app
        self.correlation = 0

    def connect(self, side: str) -> float:
        """Seconds from connect() to the Metadata answer, on a fresh connection."""
        started = time.perf_counter()
        raw = socket.create_connection(("127.0.0.1", self.listeners.ports[side]), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = (
            raw if side == "PLAINTEXT" else self.tls.wrap_socket(raw, server_hostname="127.0.0.1")
        )
        with sock:
            self._call(sock, API_VERSIONS, 0, b"")
            if side == "SASL_SSL":
                self._login(sock)
            answer = self._call(sock, METADATA, 1, struct.pack(">i", -1))
            if struct.unpack_from(">i", answer)[0] < 1:
                raise RuntimeError("Metadata answered no brokers")
            return time.perf_counter() - started

    def _login(self, sock: socket.socket) -> None:
        answer = self._call(sock, SASL_HANDSHAKE, 1, _string(MECHANISM))
        _check(answer, "SaslHandshake")
        client = ScramClient([MECHANISM], USER, self.listeners.password)
        server_first = self._authenticate(sock, client.get_client_first())
        client.set_server_first(server_first)
        client.set_server_final(self._authenticate(sock, client.get_client_final()))

    def _authenticate(self, sock: socket.socket, token: str) -> str:
        data = token.encode()
        answer = self._call(sock, SASL_AUTHENTICATE, 1, struct.pack(">i", len(data)) + data)
        _check(answer, "SaslAuthenticate")
        message_len = struct.unpack_from(">h", answer, 2)[0]
        at = 4 + max(message_len, 0)
        size = struct.unpack_from(">i", answer, at)[0]
        return answer[at + 4 : at + 4 + size].decode()

    def _call(self, sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
        """Send one request; the answer's body (after its correlation id)."""
        self.correlation += 1
        sock.sendall(_frame(api_key, version, self.correlation, body))
        frame = _read(sock, struct.unpack(">i", _read(sock, 4))[0])
        if struct.unpack_from(">i", frame)[0] != self.correlation:
            raise RuntimeError(f"answer to api_key={api_key} has another correlation id")
        return frame[4:]


def _read(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        out += chunk
    return bytes(out)


def _check(answer: bytes, api: str) -> None:
    error = struct.unpack_from(">h", answer)[0]
    if error != 0:
        raise RuntimeError(f"{api} answered error_code={error}")


def setup_times(listeners: Listeners, count: int) -> dict[str, list[float]]:
    """`count` set-up times in ms per side, the sides alternating connection by connection."""
    login = RawLogin(listeners)
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for i in range(WARMUP_CONNECTIONS + count):
        for side in SIDES if i % 2 == 0 else tuple(reversed(SIDES)):
            ms = login.connect(side) * 1000
            if i >= WARMUP_CONNECTIONS:
                times[side].append(ms)
    return times


def p99(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def report_throughput(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in ("produce", "consume"):
        plain = statistics.median(r[kind]["PLAINTEXT"] for r in rounds)
        secure = statistics.median(r[kind]["SASL_SSL"] for r in rounds)
        # Each round's two runs are back to back, so their ratio cancels the machine's
        # drift between rounds; the median of those is read against the target.
        paired = [r[kind]["SASL_SSL"] / r[kind]["PLAINTEXT"] for r in rounds]
        ratio = statistics.median(paired)
        verdict = "met" if ratio >= TARGET else "MISSED"
        print(f"{kind} MB/s median: PLAINTEXT {plain:.1f}, SASL_SSL {secure:.1f} "
              f"({secure / plain:.3f}x)")  # fmt: skip
        print(f"{kind} SASL_SSL/PLAINTEXT per round: {' '.join(f'{p:.3f}' for p in paired)}")
        print(f"{kind} SASL_SSL/PLAINTEXT median of rounds {ratio:.3f}x "
              f"(target >= {TARGET}x: {verdict})")  # fmt: skip
        summary[kind] = {
            "PLAINTEXT_mb_s": plain,
            "SASL_SSL_mb_s": secure,
            "paired": paired,
            "ratio": ratio,
            "met": ratio >= TARGET,
        }
    return summary


def report_setup(times: dict[str, list[float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for side, values in times.items():
        label = f"{side} {MECHANISM}" if side == "SASL_SSL" else side
        figures = {"p50_ms": statistics.median(values), "p99_ms": p99(values)}
        print(f"connection set-up {label}: p50 {figures['p50_ms']:.1f} ms, "
              f"p99 {figures['p99_ms']:.1f} ms ({len(values)} connections)")  # fmt: skip
        summary[side] = figures
    return summary


def run_rounds(listeners: Listeners, rounds: int, mb: int) -> list[dict[str, Any]]:
    create_topic(listeners.config("PLAINTEXT")["bootstrap.servers"], "warmup")
    for side in SIDES:  # warm-up: connections, metadata, allocator, TLS
        config = listeners.config(side)
        produce(config["bootstrap.servers"], "warmup", min(mb, 20) * MB // 4, config=config)
    results = []
    for r in range(rounds):
        order = SIDES if r % 2 == 0 else tuple(reversed(SIDES))
        figures = throughput_round(listeners, order, mb)
        results.append(figures)
        for kind in ("produce", "consume"):
            sides = "  ".join(f"{s} {figures[kind][s]:7.1f} MB/s" for s in SIDES)
            ratio = figures[kind]["SASL_SSL"] / figures[kind]["PLAINTEXT"]
            print(f"round {r + 1} {kind}: {sides}  ratio {ratio:.3f}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 20 MB, 20")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; quick 1)")
    parser.add_argument("--mb", type=int, help="MB produced per side per round (400; quick 20)")
    parser.add_argument("--connections", type=int, help="connections per listener (200; quick 20)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 7)
    mb = args.mb or (20 if args.quick else 400)
    connections = args.connections or (20 if args.quick else 200)
    if min(rounds, mb, connections) < 1 or connections < 2:
        parser.error("--rounds and --mb must be positive, --connections at least 2")
    print(f"tidelog, one broker: PLAINTEXT and SASL_SSL ({MECHANISM}) listeners")
    print(f"{mb} MB of {VALUE_SIZE} B values per side per round, {PARTITIONS} partitions, "
          f"acks=all; {rounds} round(s); {connections} connections per listener")  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="tidelog-bench-security-") as tmp,
        secure_broker(Path(tmp)) as listeners,
    ):
        results = run_rounds(listeners, rounds, mb)
        times = setup_times(listeners, connections)
    summary = {"rounds": results, "throughput": report_throughput(results)}
    summary["setup"] = report_setup(times)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Hostile load: what idle and stalled connections cost, and what a good client feels.

Starts one broker (tidelog, then Tansu 0.6 as the peer unless --no-peer) and measures,
from /proc/<pid>/status:

1. RSS per idle connection: `--idle` (default 2,000) connections that connect and send
   nothing, then the same connections after one ApiVersions round trip each (the
   receive path has been used once);
2. RSS added by `--stalled` (default 30) connections that send only a 4-byte size
   prefix announcing `--prefix-mib` (default 100) MiB and then nothing;
3. a well-behaved client's ApiVersions round-trip p50/p99 while 1 and 2 are held open.

Targets from issue 11 (printed beside the figures, never asserted): <= 32 KiB RSS per
idle connection, <= 50 MB for the stalled prefixes in all, p99 <= 50 ms.

    python bench/hostile.py
    python bench/hostile.py --idle 5000 --no-peer --json hostile.json
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/hostile.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tidelog.bench.brokers import run_broker

# ApiVersions v0: api_key 18, version 0, correlation id, null client id; no body.
_API_VERSIONS_V0 = struct.pack(">ihhih", 10, 18, 0, 7, -1)
SETTLE_TIMEOUT_S = 60.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS pid={pid}")


def open_sockets(pid: int) -> int:
    return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if _is_socket(fd))


def _is_socket(fd: Path) -> bool:
    try:
        return fd.readlink().name.startswith("socket:")
    except OSError:
        return False


def connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_frame(sock: socket.socket) -> bytes:
    size = struct.unpack(">i", _read_exactly(sock, 4))[0]
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, have = [], 0
    while have < n:
        chunk = sock.recv(n - have)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def round_trip(sock: socket.socket) -> float:
    start = time.perf_counter()
    sock.sendall(_API_VERSIONS_V0)
    read_frame(sock)
    return time.perf_counter() - start


def wait_for_sockets(pid: int, at_least: int) -> None:
    """Wait until the broker has accepted the connections (they sit in the backlog
    until it does, costing it nothing yet)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while open_sockets(pid) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError(f"broker did not accept connections want={at_least} pid={pid}")
        time.sleep(0.1)


def settled_rss(pid: int) -> int:
    """RSS once it stops moving (two readings 0.5 s apart within 1%)."""
    last = rss_bytes(pid)
    for _ in range(20):
        time.sleep(0.5)
        now = rss_bytes(pid)
        if abs(now - last) <= last // 100:
            return now
        last = now
    return last


def measure(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        bootstrap, proc = stack.enter_context(
            run_broker(kind, workdir, None, extra_args=tuple(args.broker_arg))
        )
        pid = proc.pid
        good = stack.enter_context(connect(bootstrap))
        for _ in range(50):  # warm up the good client's path
            round_trip(good)
        base_sockets = open_sockets(pid)
        base_rss = settled_rss(pid)

        idle = [stack.enter_context(connect(bootstrap)) for _ in range(args.idle)]
        wait_for_sockets(pid, base_sockets + args.idle)
        idle_rss = settled_rss(pid)
        for sock in idle:
            round_trip(sock)
        used_rss = settled_rss(pid)

        prefix = struct.pack(">i", args.prefix_mib << 20)
        stalled = [stack.enter_context(connect(bootstrap)) for _ in range(args.stalled)]
        for sock in stalled:
            sock.sendall(prefix)
        wait_for_sockets(pid, base_sockets + args.idle + args.stalled)
        stalled_rss = settled_rss(pid)
        alive = all(_still_open(s) for s in stalled)

        times = sorted(round_trip(good) for _ in range(args.requests))
        return {
            "broker": kind,
            "idle_connections": args.idle,
            "rss_base_mb": base_rss / 1e6,
            "rss_per_idle_conn_kib": (idle_rss - base_rss) / args.idle / 1024,
            "rss_per_used_idle_conn_kib": (used_rss - base_rss) / args.idle / 1024,
            "stalled_connections": args.stalled,
            "stalled_prefix_mib": args.prefix_mib,
            "stalled_still_open": alive,
            "rss_added_by_stalled_mb": (stalled_rss - used_rss) / 1e6,
            "good_client_requests": args.requests,
            "good_client_p50_ms": statistics.median(times) * 1000,
            "good_client_p99_ms": times[int(len(times) * 0.99) - 1] * 1000,
        }


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tidelog-hostile-") as tmp:
        yield Path(tmp)


def print_report(result: dict[str, Any]) -> None:
    kind = result["broker"]
    print(f"{kind}: base RSS {result['rss_base_mb']:.1f} MB")
    print(
        f"{kind}: RSS per idle connection {result['rss_per_idle_conn_kib']:.1f} KiB "
        f"(after one request each {result['rss_per_used_idle_conn_kib']:.1f} KiB) "
        f"at {result['idle_connections']} connections  [target <= 32 KiB]"
    )
    print(
        f"{kind}: RSS added by {result['stalled_connections']} connections sending only a "
        f"{result['stalled_prefix_mib']} MiB size prefix: "
        f"{result['rss_added_by_stalled_mb']:.1f} MB  [target <= 50 MB]"
        f" (connections still open: {result['stalled_still_open']})"
    )
    print(
        f"{kind}: good client ApiVersions p50 {result['good_client_p50_ms']:.2f} ms, "
        f"p99 {result['good_client_p99_ms']:.2f} ms over {result['good_client_requests']} "
        f"requests  [target p99 <= 50 ms]"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections (2000)")
    parser.add_argument("--stalled", type=int, default=30, help="stalled connections (30)")
    parser.add_argument("--prefix-mib", type=int, default=100, help="announced size (100)")
    parser.add_argument("--requests", type=int, default=2000, help="good-client requests")
    parser.add_argument("--no-peer", action="store_true", help="skip Tansu")
    parser.add_argument(
        "--broker-arg", action="append", default=[], help="extra `tidelog serve` argument"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    results = []
    kinds = ["tidelog"] if args.no_peer else ["tidelog", "tansu"]
    for kind in kinds:
        with _workdir() as workdir:
            result = measure(kind, args, workdir)
        print_report(result)
        results.append(result)
    if len(results) == 2:
        ours, peer = results
        print(
            "ratio tidelog/tansu: RSS per idle connection "
            f"{_ratio(ours['rss_per_idle_conn_kib'], peer['rss_per_idle_conn_kib'])}, "
            f"good client p99 {_ratio(ours['good_client_p99_ms'], peer['good_client_p99_ms'])}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "n/a"


if __name__ == "__main__":
    raise SystemExit(main())

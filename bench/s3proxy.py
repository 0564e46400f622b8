"""A counting HTTP proxy in front of an S3 server: how many requests, of which kind, how many bytes.

Owns: a child process (its own interpreter, so relaying never competes for a GIL with the
benchmark's client loop) holding one listening socket on a free loopback port and two
threads per client connection (client -> server, parsed; server -> client, copied).
Request bodies are relayed piece by piece as they arrive, never held whole. Requests are
parsed only as far as HTTP/1.1 framing needs (request line, headers, Content-Length or
chunked body); nothing is changed, so signatures still verify. Guarantees: every request
that reached the server is counted once, under its method and under the key "kind" (the
path segment before the object name, e.g. `log` or `snapshots` for tidelog) and under
"area" (`segments` or `streams` if the key has that directory, else `other`); a GET of a
bucket with `list-type` (ListObjectsV2) is counted as `LIST`, not `GET`; bytes sent to
the server are counted per method (headers included), and bytes of the server's answers
are counted under the method of the request they answer (S3 clients do not pipeline, so
the last request on a connection is the one being answered). `stop()` closes every socket
it opened and ends the child.

It exists so the benchmark can count a broker's object-store requests without touching the
broker's storage code: the broker is simply given the proxy as its S3 endpoint.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from urllib.parse import urlsplit


@dataclass
class Counts:
    """Counters at one moment; subtract two snapshots to get what happened in between."""

    requests: Counter[str] = field(default_factory=Counter)
    sent_bytes: Counter[str] = field(default_factory=Counter)
    received_bytes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    areas: Counter[str] = field(default_factory=Counter)  # "PUT segments", "LIST other", ...
    area_sent_bytes: Counter[str] = field(default_factory=Counter)  # as sent_bytes, by area

    def copy(self) -> Counts:
        return Counts(
            Counter(self.requests),
            Counter(self.sent_bytes),
            Counter(self.received_bytes),
            Counter(self.kinds),
            Counter(self.areas),
            Counter(self.area_sent_bytes),
        )

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.requests - other.requests,
            self.sent_bytes - other.sent_bytes,
            self.received_bytes - other.received_bytes,
            self.kinds - other.kinds,
            self.areas - other.areas,
            self.area_sent_bytes - other.area_sent_bytes,
        )


class CountingProxy:
    """The proxy, run in a child process; `snapshot()` asks it for its counts."""

    def __init__(self, upstream_url: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # the parent has librdkafka threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(upstream_url, child), daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(30):
            self._proc.kill()
            raise RuntimeError("s3 proxy did not start in 30 s")
        self.url: str = self._conn.recv()
        self._lock = threading.Lock()

    def snapshot(self) -> Counts:
        with self._lock:
            self._conn.send("snapshot")
            counts: Counts = self._conn.recv()
            return counts

    def stop(self) -> None:
        with self._lock, contextlib.suppress(OSError, EOFError):
            self._conn.send("stop")
            self._conn.recv()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _serve(upstream_url: str, conn: Connection) -> None:
    """The child process: relay until told to stop, answering snapshot requests."""
    relay = _Relay(upstream_url)
    conn.send(relay.url)
    try:
        while True:
            command = conn.recv()
            if command == "snapshot":
                conn.send(relay.snapshot())
            elif command == "stop":
                relay.stop()
                conn.send("stopped")
                return
    except (EOFError, OSError):  # the parent went away
        relay.stop()


class _Relay:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._counts = Counts()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="s3proxy-accept", daemon=True).start()

    def snapshot(self) -> Counts:
        with self._lock:
            return self._counts.copy()

    def stop(self) -> None:
        self._closed = True
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                # A relay must not hold back a request's last bytes (Nagle) waiting for
                # an ACK the far end delays: that added ~40 ms to some PUTs.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, server))
            method = ["GET"]  # the request being answered on this connection
            threading.Thread(
                target=self._requests, args=(client, server, method), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(server, client, method), daemon=True
            ).start()

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._sockets.discard(s)

    def _answers(self, server: socket.socket, client: socket.socket, method: list[str]) -> None:
        try:
            while data := server.recv(1 << 18):
                # Counted before it is relayed: once the client has an answer, a snapshot
                # already holds its bytes.
                with self._lock:
                    self._counts.received_bytes[method[0]] += len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _requests(self, client: socket.socket, server: socket.socket, method: list[str]) -> None:
        reader = _Reader(client)
        try:
            while True:
                head = reader.until(b"\r\n\r\n")
                if head is None:
                    return
                verb, path, headers = _parse_head(head)
                verb = _verb(verb, path)
                method[0] = verb
                area = f"{verb} {_area(path)}"
                with self._lock:
                    self._counts.requests[verb] += 1
                    self._counts.kinds[f"{verb} {_kind(path)}"] += 1
                    self._counts.areas[area] += 1
                    self._counts.sent_bytes[verb] += len(head)
                    self._counts.area_sent_bytes[area] += len(head)
                server.sendall(head)
                for piece in _body(reader, headers):
                    with self._lock:
                        self._counts.sent_bytes[verb] += len(piece)
                        self._counts.area_sent_bytes[area] += len(piece)
                    server.sendall(piece)
        except OSError:
            pass
        finally:
            self._close(client, server)


class _Reader:
    """Buffered reads from a socket: up to a delimiter, or an exact count."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self._sock.recv(1 << 16)
        self._buf += data
        return bool(data)

    def until(self, delimiter: bytes) -> bytes | None:
        while (end := self._buf.find(delimiter)) < 0:
            if not self._fill():
                return None
        end += len(delimiter)
        out = bytes(self._buf[:end])
        del self._buf[:end]
        return out

    def exactly(self, count: int) -> Iterator[bytes]:
        """`count` bytes, yielded as they arrive: what is buffered, then straight from the
        socket (one copy per byte; the relay's CPU is on the benchmark's cores too)."""
        if self._buf:
            piece = bytes(self._buf[:count])
            del self._buf[: len(piece)]
            count -= len(piece)
            yield piece
        while count > 0:
            data = self._sock.recv(min(count, 1 << 18))
            if not data:
                raise OSError("connection closed inside a request body")
            count -= len(data)
            yield data


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    verb, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return verb, path, headers


def _body(reader: _Reader, headers: dict[str, str]) -> Iterator[bytes]:
    """The request body's bytes as they arrive, framing (chunk sizes, trailers) included."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = reader.until(b"\r\n")
            if line is None:
                raise OSError("connection closed inside a chunked body")
            yield line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := reader.until(b"\r\n")) not in (None, b"\r\n"):
                    yield trailer or b""
                yield b"\r\n"
                return
            yield from reader.exactly(size + 2)
    yield from reader.exactly(int(headers.get("content-length", "0")))


def _kind(path: str) -> str:
    """`/bucket/prefix/log/000…1.tlc?x` -> `log`; a bucket-level request -> `bucket`."""
    segments = [s for s in path.split("?")[0].split("/") if s]
    return segments[-2] if len(segments) >= 3 else "bucket"


def _verb(method: str, path: str) -> str:
    """The request's kind for pricing: ListObjects is a GET of the bucket, billed as LIST."""
    target, _, query = path.partition("?")
    bucket_level = len([s for s in target.split("/") if s]) <= 1
    if method == "GET" and bucket_level and ("list-type" in query or "prefix=" in query):
        return "LIST"
    return method


def _area(path: str) -> str:
    """`/bucket/root/segments/…` -> `segments`; `/bucket/root/streams/…` -> `streams`."""
    segments = path.split("?")[0].split("/")
    for area in ("segments", "streams"):
        if area in segments[:-1]:
            return area
    if "?" in path:  # a listing names its prefix in the query
        query = path.split("?", 1)[1]
        for area in ("segments", "streams"):
            if f"{area}%2F" in query or f"{area}/" in query:
                return area
    return "other"

"""A loopback TCP proxy that can be cut and restored: an object-store outage on demand.

Owns: one listening socket and a thread per direction of each connection. While cut,
new connections are closed at once and open ones are dropped, so the client sees the
server vanish without the server losing its state. It counts the bytes each way
(`bytes_down`: server to client, i.e. what the client read) and the HTTP GET requests
sent (`gets`: a request line `GET /` in the client's stream; an S3 client's reads and
listings), so a drill can measure what a broker read from the bucket in a window. Used
by integration tests and `tidelog drill`.
"""

from __future__ import annotations

import contextlib
import socket
import threading

_GET = b"GET /"


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._holding = False  # new connections wait, unanswered, until `release`
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.bytes_up = 0  # client -> server
        self.bytes_down = 0  # server -> client
        self.gets = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        self._cut.clear()

    def hold(self) -> None:
        """Accept new connections but pass nothing on: the client waits for an answer
        (a store that hangs rather than refuses). Connections already open still flow;
        `cut` first to stall everything."""
        with self._lock:
            self._holding = True

    def release(self) -> None:
        """Connect the held clients through (their requests are answered late) and stop
        holding new ones."""
        with self._lock:
            self._holding = False
            held, self._held = self._held, []
        for client in held:
            self._relay(client)

    def close(self) -> None:
        self._closed.set()
        self.cut()
        with self._lock:
            held, self._held = self._held, []
        for client in held:
            client.close()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() at once
        self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            with self._lock:
                if self._holding:
                    self._held.append(client)
                    continue
            self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)  # the 5 s was for connecting; idle keep-alive is fine
        for sock in (client, upstream):  # relay at once: no Nagle wait on a delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open += [client, upstream]
        for a, b, down in ((client, upstream, False), (upstream, client, True)):
            threading.Thread(target=self._pipe, args=(a, b, down), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        tail = b""  # a request line split across two reads is still counted once
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
                with self._lock:
                    if down:
                        self.bytes_down += len(chunk)
                        continue
                    self.bytes_up += len(chunk)
                    seen = tail + chunk
                    self.gets += seen.count(_GET)
                    tail = seen[-(len(_GET) - 1) :]
        except OSError:
            pass
        finally:
            # shutdown() before close(): the thread piping the other way is blocked in
            # recv() on one of these sockets, and a bare close() from this thread neither
            # wakes it nor sends FIN, so the client would keep a dead keep-alive connection
            # and wait out its read timeout on the next request.
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

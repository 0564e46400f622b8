"""The bench's counting S3 proxy relays requests unchanged and counts them, from its own
process; a request body reaches the server before the client has sent all of it."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tidelog.bench.s3proxy import CountingProxy

BODY = b"x" * (3 << 20)


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    first_piece = threading.Event()

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        got = self.rfile.read(1 << 16)
        _Echo.first_piece.set()  # part of the body is here; the rest may still be coming
        got += self.rfile.read(length - len(got))
        answer = f"{len(got)} {got == BODY}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_requests_are_relayed_streamed_and_counted(server: str) -> None:
    _Echo.first_piece.clear()
    with CountingProxy(server) as proxy:
        before = proxy.snapshot()
        url = urlsplit(proxy.url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        conn.putrequest("PUT", "/bench/prefix/log/0001.tlc")
        conn.putheader("Content-Length", str(len(BODY)))
        conn.endheaders()
        conn.send(BODY[: 1 << 20])
        # Streamed: the server sees the body's start while two thirds are still unsent.
        assert _Echo.first_piece.wait(10)
        conn.send(BODY[1 << 20 :])
        answer = conn.getresponse().read()
        conn.close()
        counts = proxy.snapshot() - before
    assert answer == f"{len(BODY)} True".encode()
    assert counts.requests == {"PUT": 1}
    assert counts.kinds == {"PUT log": 1}
    assert counts.sent_bytes["PUT"] > len(BODY)  # the body and the request head
    assert counts.received_bytes["PUT"] > len(answer)

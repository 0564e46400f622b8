"""A minimal blocking Kafka client for tests that must send exact bytes.

Owns: one TCP connection; sends kio requests (or raw bytes) and reads responses with
the project's own codec. Used where real clients cannot be made to misbehave.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from protocol.codec import decode_response, encode_request


class RawClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._correlation = 0

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            out += chunk
        return bytes(out)

    def request(self, request: Any) -> Any:
        self._correlation += 1
        self.sock.sendall(b"".join(encode_request(self._correlation, request, "raw-test")))
        correlation, response = decode_response(
            request.__api_key__, request.__version__, self.read_frame()
        )
        assert correlation == self._correlation
        return response

    def is_closed_by_peer(self) -> bool:
        """True once the broker has closed the connection (EOF or reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Broker-to-broker requests: the few Kafka APIs one tidelog broker sends another.

Owns: one connection per peer address, kept while it works, and one request at a time
on it (the callers are rare: transaction markers and verification). Requests and
answers are ordinary Kafka frames built with the project's codec, so the receiving
broker handles them like any client's (WriteTxnMarkers v1, AddPartitionsToTxn v4).

Guarantees: a call returns the decoded answer or raises `PeerError` (unreachable,
closed, timed out, undecodable); a failed connection is dropped and opened anew on
the next call. Frames are read through the size prefix with a cap, so a broken peer
cannot make us allocate more than `MAX_ANSWER_BYTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from tidelog.broker.security.peer_login import PeerLoginError
from tidelog.protocol.codec import decode_response, encode_request
from tidelog.protocol.errors import ProtocolError

CLIENT_ID = "tidelog-broker"
MAX_ANSWER_BYTES = 16 << 20
_SIZE = struct.Struct(">i")


class PeerError(Exception):
    """The peer could not be asked, or its answer could not be read."""


class _Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lock = asyncio.Lock()
        self.correlation = 0


Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class PeerClient:
    def __init__(self, *, timeout_s: float = 10.0, opener: Opener | None = None) -> None:
        self._timeout_s = timeout_s
        # How a connection is opened: plain TCP, or the inter-broker listener's TLS and
        # SASL login (broker/security/peer_login.py).
        self._open: Opener = opener or asyncio.open_connection
        self._links: dict[tuple[str, int], _Link] = {}
        self._opening: dict[tuple[str, int], asyncio.Lock] = {}

    async def call(self, host: str, port: int, request: Any) -> Any:
        """Send `request` (a kio request entity) to host:port and return its answer."""
        address = (host, port)
        try:
            async with asyncio.timeout(self._timeout_s):
                link = await self._link(address)
                async with link.lock:
                    link.correlation += 1
                    correlation = link.correlation
                    link.writer.writelines(encode_request(correlation, request, CLIENT_ID))
                    await link.writer.drain()
                    (size,) = _SIZE.unpack(await link.reader.readexactly(_SIZE.size))
                    if not 0 < size <= MAX_ANSWER_BYTES:
                        raise PeerError(f"answer size out of range size={size}")
                    frame = await link.reader.readexactly(size)
            got, answer = decode_response(request.__api_key__, request.__version__, frame)
            if got != correlation:
                raise PeerError(f"answer out of order expected={correlation} got={got}")
            return answer
        except (OSError, EOFError, TimeoutError, ProtocolError, PeerError, PeerLoginError) as exc:
            self._drop(address)
            raise PeerError(f"peer call failed peer={host}:{port} reason={exc!r}") from None

    async def _link(self, address: tuple[str, int]) -> _Link:
        link = self._links.get(address)
        if link is not None:
            return link
        async with self._opening.setdefault(address, asyncio.Lock()):
            link = self._links.get(address)
            if link is None:
                reader, writer = await self._open(*address)
                link = self._links[address] = _Link(reader, writer)
            return link

    def _drop(self, address: tuple[str, int]) -> None:
        link = self._links.pop(address, None)
        if link is not None:
            link.writer.close()

    async def close(self) -> None:
        for address in list(self._links):
            link = self._links.pop(address)
            link.writer.close()
            with contextlib.suppress(Exception):
                await link.writer.wait_closed()

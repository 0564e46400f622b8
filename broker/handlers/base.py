"""What every API handler is: a key, a version range, and decode -> domain -> encode.

Owns: the `Handler` base class, the handler table's type and the API ranges it
advertises, and the `client_host` of the request being handled. A handler is given
the `Node` (broker/handlers/context.py) it runs in, never the server; kio messages
are built through protocol/messages.py.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from tidelog.protocol.codec import decode_request
from tidelog.protocol.headers import RequestHeader

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node, SaslSessionView
    from tidelog.storage.meta_state import Member


# The client's address as Kafka reports it ("/127.0.0.1"), set by the connection for
# each request task (a task copies the context it was created in).
client_host: contextvars.ContextVar[str] = contextvars.ContextVar("client_host", default="")
# The principal the request's connection authenticated as ("User:ANONYMOUS" if none),
# set by the connection like `client_host`.
client_principal: contextvars.ContextVar[str] = contextvars.ContextVar(
    "client_principal", default="User:ANONYMOUS"
)
# The connection's SASL session (broker/security/sasl.py), None on listeners without
# SASL: what SaslHandshake and SaslAuthenticate drive.
client_session: contextvars.ContextVar[SaslSessionView | None] = contextvars.ContextVar(
    "client_session", default=None
)
# The name of the listener the request came in on (broker/security/listeners.py):
# Metadata and FindCoordinator answer with the brokers' addresses on that listener.
client_listener: contextvars.ContextVar[str] = contextvars.ContextVar(
    "client_listener", default="PLAINTEXT"
)
# The first error code of an answer a handler encoded itself (a list of buffers, which
# the connection cannot scan): set by that handler, read by the connection's metrics.
answer_error: contextvars.ContextVar[int] = contextvars.ContextVar("answer_error", default=0)


class Handler:
    api_key: int
    min_version: int
    max_version: int
    # A read-only request is cancelled when its connection closes: nobody will read
    # the answer. Requests that change state always run to the end.
    read_only: bool = False
    # Most requests of this API in flight on one connection (0: no cap of its own).
    max_in_flight: int = 0

    @property
    def advertised_min_version(self) -> int:
        """The lowest version ApiVersions lists; normally the lowest implemented."""
        return self.min_version

    def decode(self, frame: bytearray, body_offset: int, version: int) -> Any:
        """The request body; handlers on the hot path override this to avoid copies."""
        return decode_request(self.api_key, version, frame, body_offset)

    def expects_response(self, request: Any) -> bool:
        return True

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        """A kio response entity, or an already encoded frame as a list of buffers."""
        raise NotImplementedError


def broker_address(member: Member) -> tuple[str, int] | None:
    """Where the requesting client reaches `member`: its address on the listener the
    request came in on (None: it has no such listener)."""
    return member.address(client_listener.get())


# api_key -> its handler: what the connection dispatches on and ApiVersions lists.
HandlerTable: TypeAlias = Mapping[int, Handler]


def api_ranges(handlers: HandlerTable) -> list[tuple[int, int, int]]:
    """(api_key, advertised min version, max version) of each handler, by key."""
    return sorted((h.api_key, h.advertised_min_version, h.max_version) for h in handlers.values())

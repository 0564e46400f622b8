"""SaslHandshake (17) v0-1: the client names its SASL mechanism.

On a listener without SASL (or once authenticated) the answer is ILLEGAL_SASL_STATE;
an unknown or disabled mechanism gets UNSUPPORTED_SASL_MECHANISM with the enabled
list. After v0 the tokens arrive raw, without a Kafka header (the connection reads
them so); after v1 they come in SaslAuthenticate requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler, client_session
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class SaslHandshakeHandler(Handler):
    api_key, min_version, max_version = 17, 0, 1

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        session = client_session.get()
        if session is None:
            code, mechanisms = ErrorCode.illegal_sasl_state, tuple[str, ...]()
        else:
            code = session.handshake(str(request.mechanism), header.api_version)
            mechanisms = session.mechanisms
        return build(
            response_module(self.api_key, header.api_version),
            "SaslHandshakeResponse",
            error_code=code,
            mechanisms=tuple(mechanisms),
        )

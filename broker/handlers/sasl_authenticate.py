"""SaslAuthenticate (36) v0-2: one token of the SASL exchange the handshake chose.

A failed exchange answers SASL_AUTHENTICATION_FAILED with one message for every cause
(wrong password, unknown user, malformed token) and the connection closes once the
answer is written; nothing else is served on it. Sessions do not expire
(session_lifetime 0: no re-authentication, as Kafka without connections.max.reauth.ms).
The token is checked on a worker thread (PLAIN's PBKDF2 would stall the event loop).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import TYPE_CHECKING, Any

from tidelog.broker.handlers.base import Handler, client_session
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.headers import RequestHeader
from tidelog.protocol.messages import build, response_module

if TYPE_CHECKING:
    from tidelog.broker.handlers.context import Node


class SaslAuthenticateHandler(Handler):
    api_key, min_version, max_version = 36, 0, 2

    async def handle(self, node: Node, header: RequestHeader, request: Any) -> Any:
        session = client_session.get()
        if session is None:
            answer = b""
            failed: str | None = "SaslAuthenticate on a listener without SASL"
            code = ErrorCode.illegal_sasl_state
        else:
            # Off the event loop: PLAIN hashes the password (PBKDF2, ~4 ms) and a client
            # must not stall everyone else's requests while it does.
            answer, failed = await asyncio.to_thread(
                session.authenticate, bytes(request.auth_bytes)
            )
            code = ErrorCode.none if failed is None else ErrorCode.sasl_authentication_failed
        return build(
            response_module(self.api_key, header.api_version),
            "SaslAuthenticateResponse",
            error_code=code,
            error_message=failed,
            auth_bytes=answer,
            session_lifetime=datetime.timedelta(0),
        )

"""How one broker connects to another: the inter-broker listener's TLS and SASL.

Owns: opening a connection to a peer on `--inter-broker-listener-name` — TLS when that
listener is SSL or SASL_SSL (trusting `--ssl-cafile`, or the system's CAs; presenting
the broker's own certificate, for peers that require one), then SCRAM-SHA-512 as the
broker principal `User:tidelog-broker` when it is SASL_PLAINTEXT or SASL_SSL.

The broker principal's password is derived from a random secret kept in the security
document (`broker_secret`, made by the first broker that needs it): anyone who can read
the bucket can already read and rewrite everything, so this gives nothing new away, and
no operator has to hand brokers a password. The credential is never stored as a user:
`BrokerSecurity.credential` derives it. The authorizer treats the principal as a super
user (Kafka's brokers are super users of their own cluster the same way).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import struct
from collections.abc import Callable
from typing import Any

import scramp

from tidelog.broker.security.listeners import Listener
from tidelog.broker.security.options import SecurityConfig
from tidelog.protocol.codec import decode_response, encode_request
from tidelog.protocol.messages import build, request_module

BROKER_USER = "tidelog-broker"
BROKER_PRINCIPAL = f"User:{BROKER_USER}"
BROKER_MECHANISM = "SCRAM-SHA-512"
_SIZE = struct.Struct(">i")
_MAX_ANSWER = 64 << 10
_CLIENT_ID = "tidelog-broker"


class PeerLoginError(Exception):
    """The peer could not be reached on the inter-broker listener or refused us."""


def broker_password(secret: bytes) -> str:
    """The broker principal's password, from the cluster's secret."""
    return base64.b64encode(
        hmac.new(secret, b"tidelog-broker-password", hashlib.sha256).digest()
    ).decode()


def broker_salt(secret: bytes) -> bytes:
    return hmac.new(secret, b"tidelog-broker-salt", hashlib.sha256).digest()


def client_context(config: SecurityConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(config.ssl_cafile) if config.ssl_cafile else None
    )
    if config.ssl_certfile is not None and config.ssl_keyfile is not None:
        context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
    return context


class PeerLogin:
    """Opens authenticated connections to peers (broker/peer_client.py's `opener`)."""

    def __init__(self, config: SecurityConfig, secret: Callable[[], bytes | None]) -> None:
        self.listener: Listener = next(
            lsn for lsn in config.listeners if lsn.name == config.inter_broker_listener
        )
        self._tls = client_context(config) if self.listener.tls else None
        self._secret = secret

    async def open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=self._tls, server_hostname=host if self._tls is not None else None
        )
        if self.listener.sasl:
            try:
                await self._login(reader, writer)
            except BaseException:
                writer.close()
                raise
        return reader, writer

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        secret = self._secret()
        if secret is None:
            raise PeerLoginError("no broker_secret in the security document yet")
        client = scramp.ScramClient([BROKER_MECHANISM], BROKER_USER, broker_password(secret))
        handshake = build(request_module(17, 1), "SaslHandshakeRequest", mechanism=BROKER_MECHANISM)
        answer = await _ask(reader, writer, 1, handshake)
        if answer.error_code != 0:
            raise PeerLoginError(f"peer refused {BROKER_MECHANISM} error_code={answer.error_code}")
        token = client.get_client_first().encode()
        answer = await _ask(reader, writer, 2, _authenticate(token))
        if answer.error_code != 0:
            raise PeerLoginError(f"peer refused the broker login: {answer.error_message}")
        client.set_server_first(bytes(answer.auth_bytes).decode())
        answer = await _ask(reader, writer, 3, _authenticate(client.get_client_final().encode()))
        if answer.error_code != 0:
            raise PeerLoginError(f"peer refused the broker login: {answer.error_message}")
        client.set_server_final(bytes(answer.auth_bytes).decode())  # the peer knew the key


def _authenticate(token: bytes) -> Any:
    return build(request_module(36, 2), "SaslAuthenticateRequest", auth_bytes=token)


async def _ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, correlation: int, request: Any
) -> Any:
    writer.writelines(encode_request(correlation, request, _CLIENT_ID))
    await writer.drain()
    (size,) = _SIZE.unpack(await reader.readexactly(_SIZE.size))
    if not 0 < size <= _MAX_ANSWER:
        raise PeerLoginError(f"login answer size out of range size={size}")
    got, answer = decode_response(
        request.__api_key__, request.__version__, await reader.readexactly(size)
    )
    if got != correlation:
        raise PeerLoginError(f"login answer out of order expected={correlation} got={got}")
    return answer


def peer_opener(
    config: SecurityConfig, secret: Callable[[], bytes | None]
) -> Callable[[str, int], Any] | None:
    """The peer client's way of opening connections: None (plain TCP) when the
    inter-broker listener is PLAINTEXT."""
    if config.inter_broker_listener == "PLAINTEXT":
        return None
    return PeerLogin(config, secret).open

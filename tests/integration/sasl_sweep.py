"""SaslHandshake and SaslAuthenticate for the version sweep
(tests/integration/test_api_versions_sweep.py). They only mean something on a SASL
listener, so the sweep's broker has a SASL_PLAINTEXT listener beside its PLAINTEXT one
and a user; `connect` opens the connection each request goes out on (SaslAuthenticate's
after a v1 SaslHandshake for PLAIN, as clients send it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.index import load_payload_module
from kio.static.constants import EntityType

from tests.integration.broker_process import BrokerProcess, free_port
from tests.integration.raw_client import RawClient
from tests.integration.security_setup import add_user
from tidelog.protocol.messages import build

Built = tuple[Any, Callable[[Any], None]]
USER, PASSWORD = "sweep", "sweep-pw"
SASL_PORT = free_port()


def req(api_key: int, version: int) -> Any:
    return load_payload_module(api_key, version, EntityType.request)


def broker_args(broker_port: int) -> list[str]:
    return [
        "--listeners",
        f"PLAINTEXT://127.0.0.1:{broker_port},SASL_PLAINTEXT://127.0.0.1:{SASL_PORT}",
    ]


def prepare(broker: BrokerProcess) -> None:
    """The sweep user, in the bucket before the broker starts."""
    add_user(broker.data_dir / "objects", USER, PASSWORD)


def _handshake(v: int) -> Any:
    return build(req(17, v), "SaslHandshakeRequest", mechanism="PLAIN")


def _sasl_handshake(v: int, broker: BrokerProcess) -> Built:
    def check(r: Any) -> None:
        assert r.error_code == 0 and "PLAIN" in r.mechanisms

    return _handshake(v), check


def _sasl_authenticate(v: int, broker: BrokerProcess) -> Built:
    request = build(
        req(36, v), "SaslAuthenticateRequest", auth_bytes=f"\0{USER}\0{PASSWORD}".encode()
    )

    def check(r: Any) -> None:
        assert (r.error_code, r.error_message, r.auth_bytes) == (0, None, b"")

    return request, check


def connect(api_key: int, broker: BrokerProcess) -> RawClient:
    """The connection a request of `api_key` is sent on."""
    if api_key not in WITH_BROKER:
        return RawClient(broker.bootstrap)
    client = RawClient(f"127.0.0.1:{SASL_PORT}")
    if api_key == 36:
        assert client.request(_handshake(1)).error_code == 0
    return client


WITH_BROKER: dict[int, Callable[[int, BrokerProcess], Built]] = {
    17: _sasl_handshake,
    36: _sasl_authenticate,
}
RANGES = {17: (0, 1), 36: (0, 2)}

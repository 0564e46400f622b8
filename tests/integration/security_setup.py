"""What the security tests share: certificates, users, and a broker with every listener.

Owns: a test CA and certificates made by trustme (the broker's, for 127.0.0.1 and
localhost, and a client certificate for mTLS), users written into a bucket's security
document the way `tidelog users add` writes them (salted SCRAM credentials), and a
`tidelog serve` with PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL listeners on free
ports, each client configuration spelled the way confluent-kafka wants it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from tests.integration.broker_process import BrokerProcess, free_port
from tidelog.broker.security.credentials import SCRAM_MECHANISMS, make_credential
from tidelog.storage.local_store import LocalObjectStore
from tidelog.storage.security_doc import SecurityDocStore

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True)
class Certs:
    ca: Path  # the CA every certificate here chains to
    cert: Path  # the broker's chain
    key: Path
    client: Path  # a client's key and certificate in one PEM (subject CN=alice, O=acme)
    client_cert: Path
    client_key: Path


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("alice@acme.example", common_name="alice", organization_name="acme")
    certs = Certs(
        ca=directory / "ca.pem",
        cert=directory / "broker.pem",
        key=directory / "broker-key.pem",
        client=directory / "client.pem",
        client_cert=directory / "client-cert.pem",
        client_key=directory / "client-key.pem",
    )
    ca.cert_pem.write_to_path(str(certs.ca))
    server.cert_chain_pems[0].write_to_path(str(certs.cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(certs.cert), append=True)
    server.private_key_pem.write_to_path(str(certs.key))
    client.private_key_and_cert_chain_pem.write_to_path(str(certs.client))
    client.cert_chain_pems[0].write_to_path(str(certs.client_cert))
    client.private_key_pem.write_to_path(str(certs.client_key))
    return certs


def add_user(objects: Path, name: str, password: str, mechanisms: Sequence[str] = ()) -> None:
    """Salted SCRAM credentials for `name` in the bucket at `objects` (file store)."""

    async def write() -> None:
        objects.mkdir(parents=True, exist_ok=True)
        store = LocalObjectStore(objects)
        try:

            def edit(doc: dict[str, Any]) -> None:
                doc["users"][name] = {
                    m: make_credential(password, m).to_json()
                    for m in (mechanisms or SCRAM_MECHANISMS)
                }

            await SecurityDocStore(store).change(edit)
        finally:
            await store.close()

    asyncio.run(write())


class SecureBroker(BrokerProcess):
    """`tidelog serve` with one listener of each kind; `port` is the PLAINTEXT one."""

    def __init__(
        self, data_dir: Path, certs: Certs, *, args: Sequence[str] = (), node_id: int = 1
    ) -> None:
        self.certs = certs
        self.ports = {name: free_port() for name in PROTOCOLS}
        listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items())
        super().__init__(
            data_dir,
            port=self.ports["PLAINTEXT"],
            node_id=node_id,
            args=[
                "--listeners", listeners,
                "--ssl-certfile", str(certs.cert),
                "--ssl-keyfile", str(certs.key),
                "--ssl-cafile", str(certs.ca),
                "--ssl-client-auth", "requested",
                *args,
            ],
        )  # fmt: skip

    @property
    def objects(self) -> Path:
        return self.data_dir / "objects"

    def address(self, protocol: str) -> str:
        return f"127.0.0.1:{self.ports[protocol]}"

    def client_config(
        self,
        protocol: str,
        mechanism: str | None = None,
        user: str = "",
        password: str = "",
        **extra: Any,
    ) -> dict[str, Any]:
        """confluent-kafka's settings for this listener (and SASL mechanism)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.address(protocol),
            "security.protocol": protocol,
        }
        if "SSL" in protocol:
            config["ssl.ca.location"] = str(self.certs.ca)
        if mechanism is not None:
            config.update(
                {"sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password}
            )
        config.update(extra)
        return config

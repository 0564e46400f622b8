"""Kafka's listener syntax: `PLAINTEXT://127.0.0.1:9092,SASL_SSL://0.0.0.0:9094`.

Owns: parsing `--listeners` and `--advertised-listeners`, and what each security
protocol asks of a connection (TLS first? SASL before anything else?). A listener's
name is its security protocol (tidelog has no `listener.security.protocol.map`), so
one broker has at most one listener of each kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidelog.broker.config_values import HostPort, parse_host_port

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class Listener:
    name: str  # also its security protocol
    address: HostPort

    @property
    def tls(self) -> bool:
        return self.name in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.name in ("SASL_PLAINTEXT", "SASL_SSL")

    def __str__(self) -> str:
        return f"{self.name}://{self.address}"


def parse_listeners(text: str) -> tuple[Listener, ...]:
    """`NAME://HOST:PORT[,NAME://HOST:PORT...]`; raises ValueError naming the bad part."""
    listeners: list[Listener] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, address = part.partition("://")
        name = name.upper()
        if not sep:
            raise ValueError(f"expected NAME://HOST:PORT, got {part!r}")
        if name not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"expected a listener named {', '.join(SECURITY_PROTOCOLS)}, got {name!r}"
            )
        if any(existing.name == name for existing in listeners):
            raise ValueError(f"listener {name} given twice")
        listeners.append(Listener(name, parse_host_port(address)))
    if not listeners:
        raise ValueError("expected at least one NAME://HOST:PORT")
    return tuple(listeners)


def advertise(address: HostPort) -> HostPort:
    """What to tell clients for a bind address: a wildcard host becomes 127.0.0.1."""
    if address.host in ("0.0.0.0", "::", ""):
        return HostPort("127.0.0.1", address.port)
    return address

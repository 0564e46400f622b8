"""A Kafka principal: `<type>:<name>`, e.g. `User:alice`.

Owns: parsing and printing principals the way Kafka's tools write them, and the
principal of a connection nobody authenticated on (`User:ANONYMOUS`, as Kafka's).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


ANONYMOUS = Principal("User", "ANONYMOUS")


def parse_principal(text: str) -> Principal:
    """`User:alice` -> Principal("User", "alice"); raises ValueError if malformed."""
    kind, sep, name = text.strip().partition(":")
    if not sep or not kind or not name:
        raise ValueError(f"expected a principal like User:alice, got {text!r}")
    return Principal(kind, name)


def user(name: str) -> Principal:
    return Principal("User", name)

"""Option values: the parsers every broker and tool option uses, and their errors.

Owns: `HostPort`, the one-line `ConfigError`, and the small parsers (integers in a
range, choices, booleans, addresses) shared by broker/config.py and
broker/security/options.py. A parser raises ValueError with a lowercase message; the
caller names the option.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class ConfigError(Exception):
    """A user-supplied setting is invalid; the message is one line for the terminal."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(text: str) -> HostPort:
    """HOST:PORT or [IPv6]:PORT."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    port = int(port_text)
    if not host or not 0 <= port <= 65535:
        raise ValueError(f"expected HOST:PORT with a port 0-65535, got {text!r}")
    return HostPort(host, port)


def parse_http_listen(text: str) -> HostPort | None:
    """HOST:PORT, or `off` for no HTTP listener."""
    if text.strip().lower() == "off":
        return None
    try:
        return parse_host_port(text)
    except ValueError:
        raise ValueError(f"expected HOST:PORT or off, got {text!r}") from None


def int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected {low}..{high}, got {value}")
        return value

    return parse


def choice(options: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {text!r}")
        return text.lower()

    return parse


def node_list(text: str) -> tuple[int, ...]:
    parse = int_in(0, 2**31 - 1)
    return tuple(parse(part.strip()) for part in text.split(",") if part.strip())


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "TIDELOG_" + self.dest.upper()

"""What every API handler is: a key, a version range, and decode -> domain -> encode.

Owns: the `Handler` base class and `build`, which constructs a kio response entity of
the request's version from keyword arguments, dropping fields that version lacks, so
one handler body serves every version in its range.
"""

from __future__ import annotations

import contextvars
import dataclasses
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kio.index import load_payload_module
from kio.static.constants import EntityType

from tidelog.protocol.codec import decode_request
from tidelog.protocol.headers import RequestHeader

if TYPE_CHECKING:
    from tidelog.broker.server import Broker


# The client's address as Kafka reports it ("/127.0.0.1"), set by the connection for
# each request task (a task copies the context it was created in).
client_host: contextvars.ContextVar[str] = contextvars.ContextVar("client_host", default="")


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

    async def handle(self, broker: Broker, header: RequestHeader, request: Any) -> Any:
        """A kio response entity, or an already encoded frame as a list of buffers."""
        raise NotImplementedError


@cache
def response_module(api_key: int, version: int) -> ModuleType:
    return load_payload_module(api_key, version, EntityType.response)


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def build(module: ModuleType, class_name: str, **fields: Any) -> Any:
    """An instance of `module.class_name`, keeping only the fields that version has."""
    cls = getattr(module, class_name)
    names = _field_names(cls)
    return cls(**{k: v for k, v in fields.items() if k in names})

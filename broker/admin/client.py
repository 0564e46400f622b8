"""A small blocking Kafka admin client: the read-only group queries `tidelog groups` needs.

Owns: one TCP connection to one broker, request/response framing over it with the
project's own codec (`protocol.codec`), and the four queries below, each returning plain
frozen dataclasses rather than kio entities. It speaks only the Kafka protocol, so it
works against any broker that implements these versions (`call` sends any other
request the codec knows, e.g. the txn drill's raw Fetch):

    ListGroups v4, DescribeGroups v5, OffsetFetch v8, ListOffsets v7

Guarantees: a broker that cannot be reached, closes the connection or answers with
something undecodable raises `AdminConnectionError`; a Kafka error code in an answer
raises `AdminError` naming the code. The bootstrap broker is asked directly (tidelog
brokers each coordinate every group and lead every partition), so there is no
FindCoordinator or Metadata round trip.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tidelog.protocol.codec import decode_response, encode_request
from tidelog.protocol.errors import ErrorCode, ProtocolError
from tidelog.protocol.messages import build, request_module

__all__ = [
    "EARLIEST",
    "LATEST",
    "AdminClient",
    "AdminConnectionError",
    "AdminError",
    "CommittedOffset",
    "GroupDescription",
    "GroupListing",
    "GroupMember",
    "parse_bootstrap",
]

LIST_OFFSETS, OFFSET_FETCH, DESCRIBE_GROUPS, LIST_GROUPS = 2, 9, 15, 16
_VERSIONS = {LIST_OFFSETS: 7, OFFSET_FETCH: 8, DESCRIBE_GROUPS: 5, LIST_GROUPS: 4}
LATEST, EARLIEST = -1, -2  # ListOffsets' special timestamps
_SIZE = struct.Struct(">i")
CLIENT_ID = "tidelog-admin"


class AdminConnectionError(Exception):
    """The broker could not be reached, or the conversation with it broke down."""


class AdminError(Exception):
    """The broker answered with a Kafka error code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    state: str
    protocol_type: str


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: bytes  # the protocol's assignment bytes; empty unless the group is Stable


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[GroupMember, ...]


@dataclass(frozen=True)
class CommittedOffset:
    topic: str
    partition: int
    offset: int  # -1: nothing committed


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """("host", port) from "HOST:PORT"; raises ValueError on anything else."""
    host, sep, port = bootstrap.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT bootstrap={bootstrap!r}")
    return host.strip("[]"), int(port)


def _request_module(api_key: int) -> ModuleType:
    return request_module(api_key, _VERSIONS[api_key])


def _request(api_key: int, class_name: str, **fields: Any) -> Any:
    return build(_request_module(api_key), class_name, **fields)


def _check(code: int, what: str) -> None:
    if code != ErrorCode.none:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else "unknown"
        raise AdminError(f"{what} failed error={name} code={code}", code)


class AdminClient:
    """One blocking connection; use as a context manager."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = parse_bootstrap(bootstrap)
        self.bootstrap = bootstrap
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AdminConnectionError(
                f"cannot connect bootstrap={bootstrap} reason={reason}"
            ) from None
        self._correlation = 0

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def list_groups(self) -> list[GroupListing]:
        response = self.call(_request(LIST_GROUPS, "ListGroupsRequest", states_filter=()))
        _check(response.error_code, "list groups")
        return sorted(
            (GroupListing(g.group_id, g.group_state, g.protocol_type) for g in response.groups),
            key=lambda g: g.group_id,
        )

    def describe_group(self, group_id: str) -> GroupDescription:
        """The group as the coordinator sees it; an unknown group has state "Dead"."""
        request = _request(
            DESCRIBE_GROUPS,
            "DescribeGroupsRequest",
            groups=(group_id,),
            include_authorized_operations=False,
        )
        (group,) = self.call(request).groups
        _check(group.error_code, f"describe group={group_id}")
        members = tuple(
            GroupMember(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                bytes(m.member_assignment),
            )
            for m in group.members
        )
        return GroupDescription(
            group.group_id, group.group_state, group.protocol_type, group.protocol_data, members
        )

    def committed_offsets(self, group_id: str) -> list[CommittedOffset]:
        """Every partition the group has committed an offset for (OffsetFetch, null topics)."""
        mod = _request_module(OFFSET_FETCH)
        wanted = build(mod, "OffsetFetchRequestGroup", group_id=group_id, topics=None)
        response = self.call(build(mod, "OffsetFetchRequest", groups=(wanted,)))
        (group,) = response.groups
        _check(group.error_code, f"offset fetch group={group_id}")
        out = []
        for t in group.topics:
            for p in t.partitions:
                _check(p.error_code, f"offset fetch group={group_id} topic={t.name}")
                out.append(CommittedOffset(t.name, p.partition_index, p.committed_offset))
        return out

    def log_end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The high watermark of each (topic, partition), via ListOffsets "latest"."""
        return self.list_offsets(partitions, LATEST)

    def list_offsets(
        self, partitions: Iterable[tuple[str, int]], timestamp: int
    ) -> dict[tuple[str, int], int]:
        """The offset of each (topic, partition) for `timestamp` (LATEST: the high
        watermark, EARLIEST: the log start offset), via ListOffsets."""
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(set(partitions)):
            by_topic.setdefault(topic, []).append(partition)
        if not by_topic:
            return {}
        mod = _request_module(LIST_OFFSETS)
        topics = tuple(
            build(
                mod,
                "ListOffsetsTopic",
                name=topic,
                partitions=tuple(
                    build(mod, "ListOffsetsPartition", partition_index=p, timestamp=timestamp)
                    for p in parts
                ),
            )
            for topic, parts in by_topic.items()
        )
        request = build(mod, "ListOffsetsRequest", replica_id=-1, isolation_level=0, topics=topics)
        out: dict[tuple[str, int], int] = {}
        for t in self.call(request).topics:
            for p in t.partitions:
                _check(p.error_code, f"list offsets topic={t.name} partition={p.partition_index}")
                out[(t.name, p.partition_index)] = p.offset
        return out

    def call(self, request: Any) -> Any:
        """Any request the codec knows; its response entity (errors in it unchecked)."""
        self._correlation += 1
        api_key, version = request.__api_key__, request.__version__
        try:
            self._sock.sendall(b"".join(encode_request(self._correlation, request, CLIENT_ID)))
            frame = self._read_exactly(_SIZE.unpack(self._read_exactly(_SIZE.size))[0])
            correlation, response = decode_response(api_key, version, frame)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AdminConnectionError(
                f"request failed bootstrap={self.bootstrap} api_key={api_key} reason={reason}"
            ) from None
        except ProtocolError as exc:
            raise AdminConnectionError(
                f"undecodable answer bootstrap={self.bootstrap} api_key={api_key} reason={exc}"
            ) from None
        if correlation != self._correlation:
            raise AdminConnectionError(
                f"answer out of order bootstrap={self.bootstrap}"
                f" expected={self._correlation} got={correlation}"
            )
        return response

    def _read_exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self._sock.recv(n - len(out))
            if not chunk:
                raise ConnectionResetError(0, "connection closed by broker")
            out += chunk
        return bytes(out)

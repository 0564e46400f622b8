"""A minimal blocking Kafka client for tests that must send exact bytes.

Owns: one TCP connection; sends kio requests (or raw bytes) and reads responses with
the project's own codec. Used where real clients cannot be made to misbehave.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from tidelog.protocol.codec import decode_response, encode_request


class RawClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._correlation = 0

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            out += chunk
        return bytes(out)

    def request(self, request: Any) -> Any:
        self._correlation += 1
        self.sock.sendall(b"".join(encode_request(self._correlation, request, "raw-test")))
        correlation, response = decode_response(
            request.__api_key__, request.__version__, self.read_frame()
        )
        assert correlation == self._correlation
        return response

    def is_closed_by_peer(self) -> bool:
        """True once the broker has closed the connection (EOF or reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def produce_request(topic: str, partition: int, records: bytes, *, acks: int = -1) -> Any:
    """A Produce v9 request carrying one partition's record set."""
    import datetime

    from kio.schema.produce.v9.request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )
    from kio.schema.types import TopicName
    from kio.static.primitive import Records, i16, i32, i32Timedelta

    return ProduceRequest(
        transactional_id=None,
        acks=i16(acks),
        timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)),
        topic_data=(
            TopicProduceData(
                name=TopicName(topic),
                partition_data=(
                    PartitionProduceData(index=i32(partition), records=Records(records)),
                ),
            ),
        ),
    )


def fetch_request(
    topic: str,
    partitions: list[tuple[int, int]],
    *,
    max_wait_ms: int = 0,
    min_bytes: int = 0,
    max_bytes: int = 50 << 20,
    partition_max_bytes: int = 50 << 20,
) -> Any:
    """A Fetch v12 request for (partition, offset) pairs of one topic."""
    import datetime

    from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
    from kio.schema.types import BrokerId, TopicName
    from kio.static.primitive import i8, i32, i32Timedelta, i64

    return FetchRequest(
        replica_id=BrokerId(-1),
        max_wait=i32Timedelta.parse(datetime.timedelta(milliseconds=max_wait_ms)),
        min_bytes=i32(min_bytes),
        max_bytes=i32(max_bytes),
        isolation_level=i8(0),
        session_id=i32(0),
        session_epoch=i32(-1),
        topics=(
            FetchTopic(
                topic=TopicName(topic),
                partitions=tuple(
                    FetchPartition(
                        partition=i32(p),
                        current_leader_epoch=i32(-1),
                        fetch_offset=i64(offset),
                        last_fetched_epoch=i32(-1),
                        log_start_offset=i64(-1),
                        partition_max_bytes=i32(partition_max_bytes),
                    )
                    for p, offset in partitions
                ),
            ),
        ),
        forgotten_topics_data=(),
        rack_id="",
    )


def fetch_records(bootstrap: str, topic: str, partition: int, offset: int) -> bytes:
    """The raw record set a Fetch v12 returns for one partition (no long poll)."""
    with RawClient(bootstrap) as client:
        response = client.request(fetch_request(topic, [(partition, offset)]))
    data = response.responses[0].partitions[0]
    assert data.error_code == 0, data.error_code
    return bytes(data.records or b"")


def topic_id(bootstrap: str, topic: str) -> Any:
    """The topic's id (a uuid.UUID) as Metadata v12 names it."""
    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
    from kio.schema.types import TopicName

    request = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name=TopicName(topic)),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    with RawClient(bootstrap) as client:
        (found,) = client.request(request).topics
    assert found.error_code == 0, found.error_code
    return found.topic_id

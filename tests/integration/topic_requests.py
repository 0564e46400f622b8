"""Topic admin requests as exact bytes, for tests of what a topic may be.

Owns: raw CreateTopics v7, CreatePartitions v3 and Metadata v12 requests (real clients
check counts themselves, so they cannot send 0, -5 or 2^31-1), and writing topics into a
bucket the way a broker without topic checks did, to test what such a bucket does now.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from pathlib import Path
from typing import Any

from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.create_topics.v7.request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from tests.integration.raw_client import RawClient
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

TEN_S = i32Timedelta.parse(datetime.timedelta(seconds=10))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topics(
    bootstrap: str,
    topics: list[tuple[str, int, dict[str, str | None]]],
    *,
    validate_only: bool = False,
) -> list[tuple[ErrorCode, str | None]]:
    request = CreateTopicsRequest(
        topics=tuple(
            CreatableTopic(
                name=TopicName(name),
                num_partitions=i32(count),
                replication_factor=i16(1),
                assignments=(),
                configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in configs.items()),
            )
            for name, count, configs in topics
        ),
        timeout=TEN_S,
        validate_only=validate_only,
    )
    with RawClient(bootstrap) as c:
        resp = c.request(request)
    return [(ErrorCode(t.error_code), t.error_message) for t in resp.topics]


def create_topic(bootstrap: str, name: str, count: int, **kw: Any) -> tuple[ErrorCode, str | None]:
    (result,) = create_topics(bootstrap, [(name, count, {})], **kw)
    return result


def create_partitions(
    bootstrap: str, grow: list[tuple[str, int]], *, validate_only: bool = False
) -> list[tuple[ErrorCode, str | None]]:
    request = CreatePartitionsRequest(
        topics=tuple(
            CreatePartitionsTopic(name=TopicName(n), count=i32(c), assignments=None)
            for n, c in grow
        ),
        timeout=TEN_S,
        validate_only=validate_only,
    )
    with RawClient(bootstrap) as c:
        resp = c.request(request)
    return [(ErrorCode(r.error_code), r.error_message) for r in resp.results]


def metadata(bootstrap: str, names: list[str] | None, *, auto_create: bool = True) -> Any:
    topics = (
        None
        if names is None
        else tuple(MetadataRequestTopic(topic_id=None, name=TopicName(n)) for n in names)
    )
    with RawClient(bootstrap) as c:
        return c.request(
            MetadataRequest(
                topics=topics,
                allow_auto_topic_creation=auto_create,
                include_topic_authorized_operations=False,
            )
        )


def partition_counts(bootstrap: str) -> dict[str, int]:
    return {t.name: len(t.partitions) for t in metadata(bootstrap, None).topics}


def one_record(value: bytes) -> bytes:
    return build_batch([Record(0, 1_700_000_000_000, b"k", value)])


def write_topics_as_before_validation(
    tmp_path: Path, bucket: str, topics: dict[str, tuple[int, dict[str, str]]]
) -> None:
    """Topics in the bucket's metadata log exactly as a broker without topic checks
    wrote them (the `create_topic` op itself), by a broker that then left cleanly."""
    from tidelog.storage.log_store import LogStore, StoreConfig
    from tidelog.storage.meta_state import MetaState
    from tidelog.storage.store_url import open_object_store

    async def write() -> None:
        objects = open_object_store(bucket, s3_endpoint=None, default_root=tmp_path)
        store = LogStore(
            StoreConfig(data_dir=tmp_path / "old-broker", node_id=99),
            objects,
            lambda: 1_700_000_000_000,
        )
        await store.start()
        for name, (count, configs) in topics.items():
            op = {
                "op": "create_topic",
                "name": name,
                "id": str(uuid.uuid4()),
                "partitions": count,
                "configs": configs,
            }
            keys = [(name, p) for p in range(count)]

            def ops(state: MetaState, op: dict[str, Any] = op, keys: Any = keys) -> list[Any]:
                return [op, store.membership.assign_new(state, keys)]

            await store.meta.append(ops=ops, guard=store.membership.is_member)
        await store.membership.adopt_assigned()
        await store.stop()

    asyncio.run(write())

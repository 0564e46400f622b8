"""`--s3-sse`: every object the broker writes is stored with S3 server-side encryption.

moto's S3 server (it also serves KMS, so an aws:kms key can be made for the test): a
broker with `--s3-sse AES256` or `--s3-sse aws:kms --s3-sse-kms-key-id K` takes
records; every object under its prefix then says so on HEAD. Without the option,
objects carry no encryption setting. A file:// store refuses the option at start-up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka import Producer

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import consume_all
from tests.integration.test_s3_broker import s3_args
from tidelog.broker.processes.s3_servers import S3Server

pytestmark = pytest.mark.integration


def kms_key(server: S3Server) -> str:
    kms = boto3.session.Session().client(
        "kms",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
    key_id: str = kms.create_key(Description="tidelog test")["KeyMetadata"]["KeyId"]
    return key_id


def object_encryption(server: S3Server, bucket: str) -> dict[str, tuple[Any, Any]]:
    client = server.client()
    try:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        heads = {k: client.head_object(Bucket=bucket, Key=k) for k in keys}
    finally:
        client.close()
    return {k: (h.get("ServerSideEncryption"), h.get("SSEKMSKeyId")) for k, h in heads.items()}


@pytest.mark.parametrize("mode", ["AES256", "aws:kms", None])
def test_every_object_is_written_with_the_encryption_asked_for(
    tmp_path: Path, moto_s3: S3Server, mode: str | None
) -> None:
    bucket = moto_s3.create_bucket()
    args = [*s3_args(moto_s3, bucket)]
    key = None
    if mode is not None:
        args += ["--s3-sse", mode]
    if mode == "aws:kms":
        key = kms_key(moto_s3)
        args += ["--s3-sse-kms-key-id", key]
    with BrokerProcess(tmp_path / "data", args=args, env=moto_s3.env()) as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for i in range(20):
            producer.produce("sealed", b"v%d" % i, partition=0)
        assert producer.flush(30) == 0
        assert len(consume_all(broker, "sealed", 0, 20)) == 20
    seen = object_encryption(moto_s3, bucket)
    assert any("streams/" in k for k in seen) and any(k.endswith(".tlc") for k in seen)
    if mode is None:
        assert set(seen.values()) == {(None, None)}
    else:
        for found_mode, found_key in seen.values():
            assert found_mode == mode
            if key is not None:
                assert found_key is not None and found_key.endswith(key)


def test_s3_sse_on_a_file_store_is_a_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "serve", "--data-dir", str(tmp_path),
         "--s3-sse", "AES256"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "tidelog serve: error: --s3-sse needs an s3:// --object-store"
    ]

"""A full disk under the WAL: produce is refused at once, resumes by itself, loses nothing.

The broker's data dir is a small tmpfs (a real filesystem that really fills up), the
bucket is elsewhere. While the disk is full every produce is answered with
KAFKA_STORAGE_ERROR (a half-written batch is cut from the WAL, so it can never become
visible); once space is freed, acks resume without a restart, and the partition holds
exactly the acknowledged records, before and after a kill -9 and replay.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, produce_request
from tests.integration.test_clients import create_topic
from tests.integration.test_crash_recovery import read_partition
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

pytestmark = pytest.mark.integration

DISK_BYTES = 16 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: a filesystem of its own that a test can fill to ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip(
            f"mounting a small tmpfs as a full disk needs root (uid={os.geteuid()}); "
            "tests/unit/test_wal.py injects ENOSPC instead"
        )
    path = tmp_path / "disk"
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)]
    proc = subprocess.run(mount, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (no CAP_SYS_ADMIN?): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 64 << 10, 4 << 10, 512):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def produce_raw(broker: BrokerProcess, value: bytes) -> ErrorCode:
    batch = build_batch([Record(0, 1_700_000_000_000, b"k", value)])
    with RawClient(broker.bootstrap, timeout=30) as client:
        response = client.request(produce_request("full", 0, batch))
    return ErrorCode(response.responses[0].partition_responses[0].error_code)


def test_a_full_disk_refuses_produce_at_once_and_acks_resume_once_space_is_freed(
    tmp_path: Path, small_disk: Path
) -> None:
    args = ["--object-store", f"file://{tmp_path / 'bucket'}"]  # the bucket is not on it
    broker = BrokerProcess(small_disk, args=args).start()
    try:
        create_topic(broker, "full")
        producer = Producer(
            {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5}
        )
        acked: list[int] = []

        def on_delivery(err: object, msg: object) -> None:
            if err is None:
                acked.append(int(msg.value()))  # type: ignore[attr-defined]

        for i in range(100):
            producer.produce("full", value=str(i).encode(), on_delivery=on_delivery)
        assert producer.flush(30) == 0
        filler = fill(small_disk)
        # Bigger than any slack left in the WAL's last page: it is half written, then cut.
        for _ in range(3):
            assert produce_raw(broker, b"refused" * 40_000) == ErrorCode.kafka_storage_error
        # The idempotent producer retries KAFKA_STORAGE_ERROR until the disk has room.
        for i in range(100, 200):
            producer.produce("full", value=str(i).encode(), on_delivery=on_delivery)
        producer.poll(0.5)
        assert "wal write failed" in broker.output()
        filler.unlink()
        assert producer.flush(60) == 0, "acks did not resume after space was freed"
        assert sorted(acked) == list(range(200))
        assert read_partition(broker.bootstrap, "full", 0) == list(range(200))
        assert "wal writable again" in broker.output()
        # What replay finds in the WAL is what was acknowledged, nothing half written.
        broker.kill()
        with BrokerProcess(small_disk, port=broker.port, args=args) as again:
            assert read_partition(again.bootstrap, "full", 0) == list(range(200))
    finally:
        broker.kill()

"""The brokers one benchmark setup compares, and how to start each on fresh or existing data.

Owns: `Side` (one broker configuration under test: tidelog in wal or object mode, Tansu on
its memory or S3 engine), fresh stores for it (a local directory, an S3 prefix, a new
bucket for Tansu), starting it through `bench.brokers.run_broker`, reading its RSS, and
attaching py-spy to it for a profile. Guarantees: a broker started here is stopped when
its block exits; a py-spy it started has written its output and exited before that.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tidelog.bench.brokers import S3Endpoint, run_broker, s3_client
from tidelog.broker.processes import ChildProcess

TIDELOG_FLUSH_INTERVAL_MS = 200  # `tidelog serve`'s default --flush-interval-ms


@dataclass
class Running:
    bootstrap: str
    pid: int


@dataclass
class Side:
    kind: str  # "tidelog" or "tansu"
    label: str  # e.g. "tidelog-wal", "tansu-memory"
    workdir: Path
    s3: S3Endpoint | None  # what the broker is given as its S3 server (the counting proxy)

    @property
    def durable(self) -> bool:
        """Whether data survives a restart (Tansu's memory engine loses everything)."""
        return self.kind == "tidelog" or self.s3 is not None

    def new_store(self) -> str | None:
        """A fresh, empty store for one measurement; None = the broker's own default."""
        if self.kind == "tidelog":
            if self.s3 is None:
                path = self.workdir / f"store-{uuid.uuid4().hex[:8]}"
                path.mkdir()
                return f"file://{path}"
            return f"s3://{self.s3.bucket}/{uuid.uuid4().hex[:8]}"
        if self.s3 is None:
            return None
        bucket = f"tansu-{uuid.uuid4().hex[:8]}"
        s3_client(self.s3).create_bucket(Bucket=bucket)
        return f"s3://{bucket}/"

    @contextlib.contextmanager
    def broker(
        self,
        store: str | None = None,
        node_id: int = 1,
        profile_to: Path | None = None,
        args: tuple[str, ...] = (),
    ) -> Iterator[Running]:
        """`args` go to `tidelog serve` only (Tansu has no such options)."""
        extra = ("--node-id", str(node_id), "--log-level", "warning", *args)
        started = run_broker(self.kind, self.workdir, self.s3, store=store, extra_args=extra)
        with contextlib.ExitStack() as stack:
            bootstrap, proc = stack.enter_context(started)
            stack.enter_context(_py_spy(proc.pid, profile_to))
            yield Running(bootstrap, proc.pid)


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/PID/status."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def _py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """Sample `pid` with py-spy (raw collapsed stacks to `out`) while the block runs."""
    binary = py_spy_binary() if out is not None else None
    if out is None or binary is None:
        if out is not None:
            out.write_text("py-spy not installed: no profile\n")
        yield
        return
    # py-spy writes its output on SIGINT
    command = [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(out),
               "--rate", "100", "--nonblocking"]  # fmt: skip
    spy = ChildProcess(
        "py-spy", command, log_path=out.with_suffix(".log"), stop_signal=signal.SIGINT
    ).start()
    try:
        yield
    finally:
        spy.stop(30)

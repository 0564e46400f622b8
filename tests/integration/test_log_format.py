"""`tidelog serve --log-format json`: a real broker's log is JSON lines from its first line.

The launcher sends the broker's stdout and stderr to one log file; the broker writes
nothing to stdout, so every line up to `tidelog ready` is a line it logged on stderr.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from tests.integration.broker_process import BrokerProcess

pytestmark = pytest.mark.integration


def test_every_line_up_to_ready_is_a_json_object(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data", args=["--log-format", "json"])
    with broker:
        lines = broker.output_of_this_run().splitlines()
    ready = next(i for i, line in enumerate(lines) if "tidelog ready" in line)
    records = [json.loads(line) for line in lines[: ready + 1]]
    for r in records:
        assert {"ts", "level", "logger", "msg"} <= set(r), r
        assert r["ts"].endswith("Z")
        datetime.datetime.fromisoformat(r["ts"])
    assert records[-1]["logger"] == "tidelog.broker.server"
    assert records[-1]["level"] == "INFO"
    assert records[-1]["msg"].startswith(f"tidelog ready listen=127.0.0.1:{broker.port} ")
    assert broker.proc is not None and broker.proc.returncode == 0, broker.output()

"""`tidelog drill replace` end to end: the real CLI, two real brokers, a real client.

Each mode's drill must pass (exit 0) and its JSON report must show records acknowledged
before and after the kill, every one of them read back, and nothing lost, duplicated or
out of order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def run_drill(mode: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "drill",
            "replace",
            "--mode",
            mode,
            "--records",
            "3000",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


@pytest.mark.parametrize("mode", ["wal", "object"])
def test_replace_drill_loses_nothing_acknowledged(mode: str) -> None:
    code, report = run_drill(mode)
    assert code == 0, report
    assert report["mode"] == mode
    assert report["acknowledged"] == 3000
    assert report["acked_read_back"] == report["acknowledged"]
    assert (report["lost"], report["duplicated"], report["out_of_order"]) == (0, 0, 0)
    assert report["recovery_s"] > 0
    assert report["commits_read_by_replacement"] > 0
    assert report["bytes_copied_between_brokers"] == 0
    assert report["replacement_exit_code"] == 0
    assert report["drill_dir"] is None

"""`tidelog serve --audit-log PATH` that cannot be opened: one line and exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.broker_process import free_port

pytestmark = pytest.mark.integration


def test_an_audit_log_that_cannot_be_opened_stops_start_up_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "no-such-dir" / "audit.log"
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "serve", "--data-dir", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{free_port()}",
         "--audit-log", str(bad)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"tidelog serve: error: invalid value for --audit-log: cannot open {bad}: "
        "No such file or directory"
    ]

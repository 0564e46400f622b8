"""`tidelog drill txn` end to end, in both durability modes: the real CLI, a real broker
killed with -9 and restarted, a real transactional pipeline process killed with -9 and
restarted, real clients.

What is pinned: every anomaly count is 0 and the run passed (exit 0, PASS under the
table), and the faults really happened: two pipeline runs, transactions aborted on
purpose whose records are in the log (read_uncommitted) yet never read_committed, the
broker killed with records still to come, raw fetches that saw the LSO.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.integration

RECORDS = 2400
ANOMALIES = ("aborted_reads", "lost", "duplicated", "reordered", "read_past_lso")


def drill_txn(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "drill", "txn", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("mode", ["wal", "object"])
def test_txn_drill_finds_no_anomaly_under_kill_9_of_pipeline_and_broker(mode: str) -> None:
    done = drill_txn("--mode", mode, "--records", str(RECORDS), "--seed", "3", "--json")
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert {name: report[f"txn_{name}"] for name in ANOMALIES} == dict.fromkeys(ANOMALIES, 0), (
        f"duplicated: {report['txn_duplicate_examples']}\n{done.stderr[-3000:]}"
    )
    assert (report["lost"], report["duplicated"], report["out_of_order"]) == (0, 0, 0)
    assert report["txn_inputs_acked"] == report["acknowledged"] == RECORDS, report
    assert report["txn_committed_outputs"] == RECORDS, report
    assert report["pipeline_runs"] == 2
    assert report["pipeline_aborts_on_purpose"] > 0, report
    assert report["txn_aborted_on_purpose_written"] > 0, report
    assert report["txn_tailed"] > 0 and report["txn_fetched_batches"] > 0, report
    assert report["broker_killed_after_acked"] < RECORDS, report
    assert (report["pipeline_exit_code"], report["broker_exit_code"]) == (0, 0)
    assert report["passed"] is True and done.returncode == 0, report


def test_txn_drill_prints_the_verdict_table() -> None:
    done = drill_txn("--records", "600", "--seed", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "PASS"
    table = {
        line.strip().rsplit("  ", 1)[0].strip(): line for line in lines if line.startswith("  ")
    }
    for row in (
        "aborted reads (G1a)",
        "lost committed writes",
        "duplicated committed writes",
        "reordered within a partition",
        "reads past the LSO",
    ):
        assert row in table, lines
        assert table[row].split(row, 1)[1].split()[0] == "0", table[row]

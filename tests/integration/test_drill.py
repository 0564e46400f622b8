"""`tidelog drill` end to end: the real CLI, real brokers, a real client, real S3 servers.

Each run is short (a few thousand records). What is pinned: the verdict (nothing
acknowledged lost, duplicated or out of order; committed offsets intact), that the
failure really happened (acks on both sides of it, the zombie's "fenced" line, the
broker's "upload failed" line) and, on S3, that the replacement's reads were measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tidelog.broker.processes.s3_servers import S3Server

pytestmark = pytest.mark.integration


def run_drill(*args: str, timeout: float = 90) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "drill", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def assert_nothing_acked_went_wrong(code: int, report: dict[str, Any]) -> None:
    assert (report["lost"], report["duplicated"], report["out_of_order"]) == (0, 0, 0), report
    assert report["committed_offsets_intact"], report
    assert sum(report["committed_offsets_before"].values()) > 0
    assert report["bytes_copied_between_brokers"] == 0
    assert report["drill_dir"] is None
    assert code == 0, report


def assert_replaced(report: dict[str, Any], records: int) -> None:
    assert report["acknowledged"] == records
    assert report["acked_read_back"] == report["acknowledged"]
    assert report["recovery_s"] > 0
    assert report["commits_read_by_replacement"] > 0
    assert report["wal_batches_replayed"] is not None
    assert report["replacement_exit_code"] == 0


@pytest.mark.parametrize("mode", ["wal", "object"])
def test_replace_drill_loses_nothing_acknowledged(mode: str) -> None:
    code, report = run_drill("replace", "--mode", mode, "--records", "12000")
    assert_nothing_acked_went_wrong(code, report)
    assert (report["scenario"], report["mode"], report["store"]) == ("replace", mode, "file")
    assert_replaced(report, 12000)
    assert report["recovery_read_measured"] is False
    assert report["bucket_objects_at_takeover"] > 0


@pytest.mark.parametrize("mode", ["wal", "object"])
def test_replace_drill_on_s3_measures_what_the_replacement_read(
    mode: str, moto_s3: S3Server
) -> None:
    code, report = run_drill(
        "replace", "--mode", mode, "--records", "12000", "--store", "s3",
        "--s3-endpoint", moto_s3.endpoint_url,
    )  # fmt: skip
    assert_nothing_acked_went_wrong(code, report)
    assert report["store"] == "s3"
    assert_replaced(report, 12000)
    assert report["recovery_read_measured"] is True
    assert report["recovery_read_gets"] >= report["commits_read_by_replacement"]
    assert report["recovery_read_bytes"] > 0


def test_replace_drill_starts_its_own_s3_server(s3_credentials: None) -> None:
    code, report = run_drill(
        "replace", "--mode", "object", "--records", "12000", "--store", "s3",
        "--s3-server", "moto",
    )  # fmt: skip
    assert_nothing_acked_went_wrong(code, report)
    assert report["store"] == "s3"
    assert_replaced(report, 12000)


def test_zombie_drill_object_mode_loses_nothing_and_the_zombie_steps_down() -> None:
    code, report = run_drill("zombie", "--mode", "object", "--records", "12000")
    assert report["zombie_fenced_lines"], report  # it did resume and was fenced
    assert report["lost_after_takeover"] == 0, report
    assert report["lost_below_takeover_end"] == 0 and report["takeover_ends"], report
    assert report["acks_after_takeover"] > 0, report  # the clients reached node 2
    assert report["replacement_exit_code"] == 0
    assert_nothing_acked_went_wrong(code, report)


@pytest.fixture(scope="module")
def wal_zombie() -> tuple[int, dict[str, Any]]:
    """One wal-mode zombie drill, judged by the two tests below."""
    return run_drill("zombie", "--mode", "wal", "--records", "12000")


def test_zombie_drill_wal_mode_fences_the_zombie_and_reports_what_replace_gave_up(
    wal_zombie: tuple[int, dict[str, Any]],
) -> None:
    """Node 1's data dir cannot be handed over while it lives (LOCK), so node 2 takes over
    with --replace 1, which gives up what node 1 acknowledged and held only in its WAL
    (docs/cluster.md): the drill reports those as lost and fails, by design."""
    code, report = wal_zombie
    assert report["zombie_fenced_lines"], report
    assert (report["zombie_exited_by_itself"], report["zombie_exit_code"]) == (True, 3), report
    assert (report["duplicated"], report["out_of_order"]) == (0, 0), report
    assert report["committed_offsets_intact"], report
    assert report["lost"] >= report["lost_acked_before_freeze"] + report["lost_after_takeover"]
    assert code == (1 if report["lost"] else 0)
    assert report["passed"] is (code == 0)


def test_zombie_drill_wal_mode_loses_only_the_wal_tail_replace_gave_up(
    wal_zombie: tuple[int, dict[str, Any]],
) -> None:
    """Whatever the bucket held when node 2 took over is all there; what is lost is
    exactly node 1's acks beyond it, held only in its WAL, whenever their responses
    reached the client (one sent after SIGCONT was decided before SIGSTOP)."""
    _, report = wal_zombie
    assert report["takeover_ends"], report
    assert report["lost_below_takeover_end"] == 0, report
    assert report["lost"] == report["lost_from_wal_tail"], report


@pytest.mark.parametrize(
    ("mode", "size"), [("wal", ["--records", "8000"]), ("object", ["--duration", "2"])]
)
def test_outage_drill_loses_nothing_and_recovers(mode: str, size: list[str]) -> None:
    code, report = run_drill("object-store-outage", "--mode", mode, *size, "--outage", "1")
    assert_nothing_acked_went_wrong(code, report)
    assert report["acknowledged"] == report["records_sent"] > 5000
    assert report["broker_saw_failure_after_s"] is not None, report  # the store was cut
    assert report["uploads_resumed_after_return_s"] is not None, report
    assert report["broker_exit_code"] == 0


@pytest.mark.parametrize(
    ("scenario", "new_owner"), [("scale-out", "node 2 joins"), ("scale-in", "node 2 leaves")]
)
def test_scale_drills_move_partitions_and_lose_nothing(scenario: str, new_owner: str) -> None:
    # 8000: the size that once ended before node 2 had joined (issue 11, finding 12)
    code, report = run_drill(scenario, "--records", "8000")
    assert_nothing_acked_went_wrong(code, report)
    assert report["acknowledged"] == 8000, new_owner
    assert report["partitions_moved"], report
    # The new owner took the moved partitions where the bucket had them, and acked there.
    assert set(report["adopted_at_offsets"]) == {str(p) for p in report["partitions_moved"]}
    assert report["change_to_first_ack_on_new_owner_s"] is not None, report
    assert (report["node_1_exit_code"], report["node_2_exit_code"]) == (0, 0)


@pytest.mark.parametrize(
    "drill",
    [
        ["replace", "--mode", "wal"],
        ["replace", "--mode", "object"],
        ["zombie", "--mode", "object"],
        ["object-store-outage", "--mode", "wal", "--outage", "1"],
        ["scale-out"],
        ["scale-in"],
    ],
    ids=lambda drill: "-".join(a for a in drill if not a.startswith("-") and not a.isdigit()),
)
def test_every_drill_breaks_its_broker_while_a_500_record_load_still_runs(
    drill: list[str],
) -> None:
    # 500 records are 0.1 s of load: gone before a step that takes a second, unless the
    # load waits for the drill's schedule.
    code, report = run_drill(*drill, "--records", "500")
    assert_nothing_acked_went_wrong(code, report)
    assert report["records_planned"] == report["records_sent"] == report["acknowledged"] == 500
    assert report["load_at_failure"]["acked"] < 500, report
    assert report["acked_after_failure"] > 0, report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replace", "--s3-endpoint", "http://127.0.0.1:1"], "--s3-endpoint needs --store s3"),
        (["replace", "--records", "10", "--duration", "1"], "not allowed with argument"),
        (["zombie", "--records", "0"], "must be > 0"),
        (["scale-out", "--records", "5"], "at least 6 records"),
        (["replace", "--duration", "0.001"], "at least 6 records"),
        (["object-store-outage", "--outage", "-1"], "must be > 0"),
    ],
)
def test_drill_usage_mistakes_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "drill", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr

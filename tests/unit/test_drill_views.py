"""What the drill reads from a broker's log and from `tidelog inspect --json` (no processes)."""

from __future__ import annotations

from pathlib import Path

from tidelog.broker.drills.inspection import summarize
from tidelog.broker.drills.processes import BrokerRun, StoreArgs


def test_inspect_summary_names_the_head_and_what_is_only_in_the_wal() -> None:
    view = {
        "head": {
            "seq": 7,
            "owner_node": 1,
            "owner_epoch": 0,
            "commit_objects": 8,
            "commit_bytes": 327045,
        },
        "wal": {
            "files": ["00000000000000000001.wal"],
            "partitions": [{"only_in_wal": 100}, {"only_in_wal": 73}],
        },
    }
    assert summarize(view) == (
        "tidelog inspect: head seq=7 owner_node=1 owner_epoch=0 commit_objects=8 "
        "commit_bytes=327045; 173 records only in the WAL (1 files)"
    )


def test_inspect_summary_survives_a_changed_layout() -> None:
    assert summarize({"something": "else"}) == "tidelog inspect: no head in its output"
    assert summarize([1, 2]) == "tidelog inspect: unexpected output"
    assert summarize({"head": {"store": "file:///x", "seq": 3}}) == "tidelog inspect: head seq=3"


def test_takeover_fields_and_lines_come_from_the_replacements_log(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    broker = BrokerRun(2, 1, tmp_path / "d", StoreArgs("file:///x"), "wal", log)
    assert broker.takeover_fields() == {}
    log.write_text(
        "2026-11-24 05:08:09,126 INFO storage.ownership: sealed stream=0-n1 at seq=7 by=4-n2\n"
        "2026-11-24 05:08:09,182 INFO storage.log_store: joined node=2 stream=4-n2 "
        "took_over=0-n1 partitions=6 commits_read=12 wal_batches_replayed=66\n"
        "2026-11-24 05:08:09,203 INFO broker.server: tidelog ready listen=127.0.0.1:1 "
        "node_id=2 commits_read=12\n"
    )
    assert broker.takeover_fields() == {
        "node": "2",
        "stream": "4-n2",
        "took_over": "0-n1",
        "partitions": "6",
        "commits_read": "12",
        "wal_batches_replayed": "66",
    }
    assert broker.takeover_lines() == [
        "sealed stream=0-n1 at seq=7 by=4-n2",
        "joined node=2 stream=4-n2 took_over=0-n1 partitions=6 commits_read=12 "
        "wal_batches_replayed=66",
    ]
    assert broker.commits_read() == 12

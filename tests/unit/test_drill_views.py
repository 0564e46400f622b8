"""What the drill reads from a broker's log and from `tidelog inspect --json` (no processes)."""

from __future__ import annotations

from pathlib import Path

from broker.drills.inspection import summarize
from broker.drills.processes import BrokerRun, StoreArgs


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
        "tidelog inspect: head seq=7 owner node=1 epoch=0, 8 commit objects (327045 bytes); "
        "173 records only in the WAL (1 files)"
    )


def test_inspect_summary_survives_a_changed_layout() -> None:
    assert summarize({"something": "else"}) == "tidelog inspect: no head in its output"
    assert summarize([1, 2]) == "tidelog inspect: unexpected output"
    assert summarize({"head": {}}).startswith("tidelog inspect: head seq=None")


def test_claim_fields_come_from_the_last_claim_line(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    broker = BrokerRun(2, 1, tmp_path / "d", StoreArgs("file:///x"), "wal", log)
    assert broker.claim() == {}
    log.write_text(
        "INFO storage.log_store: claimed ownership node=2 epoch=4 commits_read=4 "
        "snapshot_seq=-1 wal_batches_replayed=9\n"
        "INFO broker.server: tidelog ready listen=127.0.0.1:1 node_id=2 commits_read=4\n"
    )
    assert broker.claim() == {
        "node": 2,
        "epoch": 4,
        "commits_read": 4,
        "snapshot_seq": -1,
        "wal_batches_replayed": 9,
    }
    assert broker.commits_read() == 4

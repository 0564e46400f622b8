"""One node id, one live broker: a second broker with a live broker's id refuses to start.

A forgotten `--node-id` used to fence the live broker (it exited 3). Now the newcomer
rings the live one through the metadata log, sees its stream move, prints one line
naming its address and last heartbeat, and exits 2; the live broker never notices. A
dead broker's id is still taken over: at once by a restart on its data dir, after its
session timeout from anywhere else (docs/cluster.md, "One broker per node id").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import create_topic
from tests.integration.test_crash_recovery import read_partition
from tests.integration.test_s3_broker import produce_values

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("durability", ["wal", "object"])
def test_a_second_broker_with_a_live_brokers_node_id_refuses_to_start(
    tmp_path: Path, durability: str
) -> None:
    args = ["--object-store", f"file://{tmp_path / 'bucket'}", "--durability", durability]
    live = BrokerProcess(tmp_path / "a", node_id=1, args=args).start()
    duplicate = BrokerProcess(tmp_path / "b", node_id=1, args=args)
    try:
        create_topic(live, "ledger")
        produce_values(live.bootstrap, "ledger", range(50))
        # Alone and idle: the live broker commits nothing until someone rings.
        with pytest.raises(RuntimeError, match="exited during start-up"):
            duplicate.start()
        assert duplicate.proc is not None and duplicate.proc.returncode == 2
        refusal = [line for line in duplicate.output().splitlines() if "error" in line]
        assert len(refusal) == 1, duplicate.output()
        assert "node id in use by a live broker" in refusal[0]
        assert f"address={live.bootstrap}" in refusal[0]
        assert "last_heartbeat=" in refusal[0]
        assert "Traceback" not in duplicate.output()
        # The live broker was not fenced and still serves.
        assert live.proc is not None and live.proc.poll() is None, live.output()
        produce_values(live.bootstrap, "ledger", range(50, 80))
        assert read_partition(live.bootstrap, "ledger", 0) == list(range(80))
        assert "fenced" not in live.output()
    finally:
        duplicate.kill()  # had it started, it would have fenced the live one
        code = live.stop()
    assert code == 0, live.output()


def test_a_dead_brokers_node_id_is_taken_over_once_its_session_timeout_passed(
    tmp_path: Path,
) -> None:
    """No data dir, no --replace: the old incarnation must stay silent for its session
    timeout, then the newcomer takes its keys as a restart always did."""
    args = [
        "--object-store",
        f"file://{tmp_path / 'bucket'}",
        "--durability",
        "object",
        "--session-timeout-ms",
        "1500",
    ]
    first = BrokerProcess(tmp_path / "a", node_id=1, args=args).start()
    create_topic(first, "ledger")
    produce_values(first.bootstrap, "ledger", range(100))
    first.kill()
    with BrokerProcess(tmp_path / "b", node_id=1, args=args) as second:
        assert read_partition(second.bootstrap, "ledger", 0) == list(range(100))
        assert "took over stream=" in second.output()


def test_a_restart_on_the_same_data_dir_takes_over_at_once_in_object_mode(
    tmp_path: Path,
) -> None:
    """The data dir names the incarnation that held it (its lock proves that one dead),
    so a restart after kill -9 waits for nothing, in either durability mode."""
    args = [
        "--object-store",
        f"file://{tmp_path / 'bucket'}",
        "--durability",
        "object",
        "--session-timeout-ms",
        "600000",  # were it waited for, the test would time out
    ]
    first = BrokerProcess(tmp_path / "a", node_id=1, args=args).start()
    create_topic(first, "ledger")
    produce_values(first.bootstrap, "ledger", range(100))
    first.kill()
    with BrokerProcess(tmp_path / "a", node_id=1, args=args) as second:
        assert read_partition(second.bootstrap, "ledger", 0) == list(range(100))
    assert "waiting" not in second.output()


def test_replace_with_its_own_node_id_takes_over_a_live_looking_broker(tmp_path: Path) -> None:
    """`--replace N` is the operator saying N is dead: no liveness check stands in the way."""
    args = ["--object-store", f"file://{tmp_path / 'bucket'}", "--durability", "object"]
    old = BrokerProcess(tmp_path / "a", node_id=1, args=args).start()
    try:
        create_topic(old, "ledger")
        produce_values(old.bootstrap, "ledger", range(20))
        with BrokerProcess(tmp_path / "b", node_id=1, args=[*args, "--replace", "1"]) as new:
            assert read_partition(new.bootstrap, "ledger", 0) == list(range(20))
            assert old.proc is not None
            assert old.proc.wait(timeout=60) == 3  # fenced, as asked
    finally:
        old.kill()

"""@platformatic/kafka (a pure-JavaScript client) produces and consumes in a consumer group.

@platformatic/kafka 2 speaks only current protocol versions (Metadata 9-12, Produce
7-11, Fetch 12-17 naming topics by id from v13, JoinGroup 6-9, OffsetCommit and
OffsetFetch 8-9: docs/kafka-apis.md). tests/integration/js/platformatic.js creates a
topic, produces keyed messages with a header one send at a time, consumes them all in a
group with autocommit, leaves, and reads the group's committed offsets back; what it
wrote is read back with confluent-kafka by partition and offset. It needs node 22, so the
fixture installs node 22 from the npm registry (the `node` package) next to the client,
once per session, under .cache/platformatic/ (git-ignored); without npm it is skipped,
as the kafkajs tests are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.broker_process import BrokerProcess
from tests.integration.test_clients import consume_all, topic_name

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "js" / "platformatic.js"
CACHE = REPO / ".cache" / "platformatic"
PACKAGES = ("node@22", "@platformatic/kafka@2")
COUNT = 30


@pytest.fixture(scope="session")
def platformatic() -> tuple[Path, Path]:
    """(node 22 binary, node_modules holding @platformatic/kafka 2), installed once."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is needed for the @platformatic/kafka tests and is not on PATH")
    modules = CACHE / "node_modules"
    node = modules / ".bin" / "node"
    package = modules / "@platformatic" / "kafka" / "package.json"

    def installed() -> bool:
        return (
            node.exists()
            and package.is_file()
            and json.loads(package.read_text())["version"].startswith("2.")
        )

    if not installed():
        CACHE.mkdir(parents=True, exist_ok=True)
        install = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *PACKAGES]
        done = subprocess.run(install, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not installed():
            pytest.fail(f"npm install {PACKAGES} failed code={done.returncode}\n{done.stderr}")
    return node, modules


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("platformatic") / "data") as proc:
        yield proc


def run_script(platformatic: tuple[Path, Path], broker: BrokerProcess, *args: str) -> Any:
    node, modules = platformatic
    done = subprocess.run(
        [str(node), str(SCRIPT), broker.bootstrap, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(modules)},
        timeout=120,
        check=False,
    )
    context = f"stderr:\n{done.stderr}\nbroker log (tail):\n{broker.output()[-4000:]}"
    assert done.returncode == 0, f"node platformatic.js exited {done.returncode}\n{context}"
    return json.loads(done.stdout)


def test_platformatic_produces_and_consumes_in_a_group_and_commits(
    platformatic: tuple[Path, Path], broker: BrokerProcess
) -> None:
    topic, group = topic_name("plt"), topic_name("plt-group")
    out = run_script(platformatic, broker, topic, group, str(COUNT))
    assert out["created"] is True
    produced = sorted((p["partition"], p["offset"]) for p in out["produced"])
    assert len(produced) == COUNT
    ends = {p: 1 + max(o for q, o in produced if q == p) for p, _ in produced}
    # Per partition the offsets are 0, 1, 2, ... in send order: nothing lost or doubled.
    assert produced == sorted((p, o) for p, end in ends.items() for o in range(end))

    consumed = {(m["partition"], m["offset"]): (m["key"], m["value"], m["app"])
                for m in out["messages"]}  # fmt: skip
    assert sorted(consumed) == produced
    values = sorted(v for _, v, _ in consumed.values())
    assert values == sorted(f"value-{i}" for i in range(COUNT))
    assert all(app == "platformatic" and key == f"key-{int(v[6:]) % 5}"
               for key, v, app in consumed.values())  # fmt: skip

    (committed_group,) = out["committed"]
    (committed_topic,) = committed_group["topics"]
    committed = {p["partitionIndex"]: p["committedOffset"] for p in committed_topic["partitions"]}
    assert committed == ends  # every message consumed was committed

    for partition, end in ends.items():  # what the broker stored is what was sent
        stored = consume_all(broker, topic, partition, end)
        assert [(o, k, v, h) for o, k, v, h in stored] == [
            (o, k.encode(), v.encode(), [("app", b"platformatic")])
            for (p, o), (k, v, _) in sorted(consumed.items())
            if p == partition
        ]

"""`python bench/compaction.py --quick` with tiny sizes, end to end: a real broker
compacts two topics under IncrementalAlterConfigs, real librdkafka consumers restore a
changelog before and after, a second broker keeps a topic under retention while the
bucket is sampled; every figure is printed and written.

The assertions are about structure, presence and what compaction must do to the record
count; no figure is compared with a speed or a duration.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"\d+\.\d+"
KEYS, UPDATES = 20, 5


def test_quick_run_prints_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "compaction.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compaction.py"), "--quick", "--mb", "2",
         "--keys", "50", "--changelog-keys", str(KEYS), "--updates", str(UPDATES),
         "--inprocess-mb", "1", "--day-s", "6", "--sample-s", "1", "--rate-mb", "0.5",
         "--json", str(out)],
        capture_output=True, text=True, timeout=280, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    row = rf"{NUMBER} \| {NUMBER} \| {NUMBER}"
    rate = rf"({NUMBER}|n/a)"  # n/a: a round cleaned within the log's millisecond
    assert re.search(rf"\| broker round 1 \| {row} \| {NUMBER} \| {rate} \| {rate} \|", text)
    assert re.search(rf"\| in-process clean_segments, median of 3 \| {row} \(cpu\)", text), text
    assert re.search(rf"compaction MB/s of input, broker median \(min-max\): {rate}", text)
    assert re.search(rf"\| before compaction \| {KEYS * UPDATES} \| {KEYS} \| {NUMBER} ", text)
    assert re.search(rf"\| after compaction \| \d+ \| {KEYS + 1} \| {NUMBER} ", text), text
    assert re.search(rf"restore before/after: {NUMBER}x time, {NUMBER}x assign -> end, "
                     rf"{NUMBER}x records", text), text  # fmt: skip
    assert re.search(r"\| \d+ \| \d+ \| \d+\.\d \| \d+ \| \d+\.\d \| \d+ \| \d+\.\d \|", text)
    doc = json.loads(out.read_text())
    (compaction,) = doc["throughput"]["rounds"]
    assert compaction["input_mb"] > compaction["output_mb"] > 0
    assert compaction["cleaning_s"] >= 0 and compaction["wall_s"] > 0
    assert doc["inprocess"]["input_mb"] > doc["inprocess"]["output_mb"] > 0
    changelog = doc["changelog"]
    assert changelog["before"]["records"] == KEYS * UPDATES
    # one record per key is left, and the newer record of each partition that had data
    assert changelog["after"]["keys"] == KEYS + 1
    assert KEYS < changelog["after"]["records"] < KEYS * UPDATES
    day = doc["retention"]
    assert day["produced_mb"] > 0 and len(day["samples"]) >= 2
    assert all(s["objects"] >= s["segments"] + s["streams"] for s in day["samples"])

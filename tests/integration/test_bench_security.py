"""`python bench/security.py --quick` end to end: a real broker with PLAINTEXT and
SASL_SSL listeners, a user made by `tidelog users add`, real librdkafka clients and the
hand-made SCRAM-SHA-512 logins; every figure is printed and written.

The assertions are about structure and presence only: no figure is compared with a speed.
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


def test_quick_run_prints_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "security.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "security.py"), "--quick", "--mb", "4",
         "--connections", "5", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    for kind in ("produce", "consume"):
        assert re.search(
            rf"round 1 {kind}: PLAINTEXT +{NUMBER} MB/s  SASL_SSL +{NUMBER} MB/s  ratio {NUMBER}",
            text,
        ), text
        assert re.search(
            rf"{kind} SASL_SSL/PLAINTEXT median of rounds {NUMBER}x "
            rf"\(target >= 0\.7x: (met|MISSED)\)",
            text,
        ), text
    for label in ("PLAINTEXT", "SASL_SSL SCRAM-SHA-512"):
        assert re.search(
            rf"connection set-up {label}: p50 {NUMBER} ms, p99 {NUMBER} ms \(5 connections\)",
            text,
        ), text
    doc = json.loads(out.read_text())
    assert len(doc["rounds"]) == 1
    for kind in ("produce", "consume"):
        figures = doc["throughput"][kind]
        assert figures["PLAINTEXT_mb_s"] > 0 and figures["SASL_SSL_mb_s"] > 0
        assert isinstance(figures["met"], bool)
    for side in ("PLAINTEXT", "SASL_SSL"):
        setup = doc["setup"][side]
        assert 0 < setup["p50_ms"] <= setup["p99_ms"]

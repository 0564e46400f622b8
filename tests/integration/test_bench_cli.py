"""`tidelog bench --quick --no-peer` end to end: every workload runs and every figure is filled.

Real brokers, a real moto server behind the counting proxy, real librdkafka clients. The
assertions are about structure and presence only: no figure is compared with a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tidelog.bench.options import WORKLOAD_NAMES

pytestmark = pytest.mark.integration

# setup -> tidelog's label there, and the workloads that run in it
SETUPS = {
    "local": ("tidelog-wal", {"produce", "consume", "latency", "groups", "drill", "memory"}),
    "s3": ("tidelog-object", {"produce", "consume", "latency", "cost"}),
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "bench", "--quick", "--no-peer",
         "--no-profile", "--out", str(out)],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [results] = out.glob("*.json")
    doc: dict[str, Any] = json.loads(results.read_text())
    return out, doc


def test_quick_run_fills_every_figure_of_every_workload(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    _, doc = quick_run
    assert doc["failures"] == []
    assert set(doc["figures"]) == set(WORKLOAD_NAMES)
    for setup, (label, workloads) in SETUPS.items():
        for wl in workloads:
            figures = doc["figures"][wl][setup][label]
            assert figures, (wl, setup)
            for metric, fig in figures.items():
                assert fig["missing"] == 0, (wl, setup, metric)
                assert isinstance(fig["median"], int | float), (wl, setup, metric)
                assert fig["min"] <= fig["median"] <= fig["max"], (wl, setup, metric)
    s3 = doc["figures"]["latency"]["s3"]["s3-server"]
    assert {"put_p50_ms", "put_p99_ms"} <= set(s3)
    cost = doc["figures"]["cost"]["s3"]["tidelog-object"]
    assert cost["puts_per_s_6p"]["median"] > 0  # the proxy saw the broker's uploads
    assert cost["gets_per_gb_replayed"]["median"] > 0  # and the cold replay's reads


def test_quick_run_reads_every_target_it_can_without_the_peer(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    _, doc = quick_run
    targets = {t["name"]: t for t in doc["targets"]}
    peer_targets = [n for n in targets if "Tansu" in n]
    assert peer_targets and all(targets[n]["met"] is None for n in peer_targets)
    own = [t for n, t in targets.items() if n not in peer_targets]
    assert len(own) == 5
    assert all(isinstance(t["met"], bool) for t in own), own
    assert doc["ratios"] == {}


def test_quick_run_writes_charts_and_a_summary(quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, doc = quick_run
    assert sorted(Path(c).name.rsplit("-", 1)[1] for c in doc["charts"]) == sorted(
        f"{wl}.png" for wl in WORKLOAD_NAMES
    )
    for chart in doc["charts"]:
        path = out / Path(chart).name
        assert path.read_bytes().startswith(b"\x89PNG")
    summary = (out / "SUMMARY.md").read_text()
    assert "## Targets" in summary
    for t in doc["targets"]:
        assert t["name"] in summary


def test_bench_usage_mistake_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidelog.broker.cli", "bench", "--only", "nonsense"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


def test_transactions_bench_help_names_its_options() -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "transactions.py"
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for option in ("--seconds", "--rounds", "--record-bytes", "--durability", "--no-peer"):
        assert option in done.stdout, option

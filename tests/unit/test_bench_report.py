"""The bench's pure parts: percentiles with missing records, targets, ratios, profiles."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tidelog.bench import cost_model
from tidelog.bench.options import WORKLOAD_NAMES
from tidelog.bench.report import Summaries, markdown_summary, profile_summary, ratios, read_targets
from tidelog.bench.s3proxy import Counts, _area, _kind, _verb
from tidelog.bench.workloads import WORKLOADS, _percentile, summarize


def test_option_names_are_the_workloads() -> None:
    assert tuple(w.name for w in WORKLOADS) == WORKLOAD_NAMES


def test_percentile_counts_missing_records_as_slowest() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 0.5) == 51.0
    assert _percentile(values, 0.99) == 100.0
    assert _percentile(values, 0.5, expected=150) == 76.0
    assert _percentile(values, 0.99, expected=150) is None


def _fig(value: float) -> dict[str, Any]:
    return summarize([value])


def test_targets_met_missed_and_not_measured() -> None:
    summ: Summaries = {
        "produce": {
            "local": {
                "tidelog-wal": {"produce_1KiB_mb_s": _fig(300), "produce_100B_mb_s": _fig(50)},
                "tansu-memory": {"produce_1KiB_mb_s": _fig(200), "produce_100B_mb_s": _fig(60)},
            }
        },
        "latency": {
            "local": {"tidelog-wal": {"produce_p99_ms": _fig(4.0)}},
            "s3": {
                "tidelog-object": {"produce_p99_ms": _fig(260.0)},
                "s3-server": {"put_p99_ms": _fig(20.0)},
            },
        },
        "memory": {"local": {"tidelog-wal": {"peak_rss_mb_1000p": _fig(300.0)}}},
    }
    verdicts = {(t.workload, t.setup, t.name.split(" vs ")[0]): t.met for t in read_targets(summ)}
    assert verdicts[("produce", "local", "produce_1KiB_mb_s")] is True
    assert verdicts[("produce", "local", "produce_100B_mb_s")] is False
    assert verdicts[("produce", "s3", "produce_1KiB_mb_s")] is None
    assert verdicts[("latency", "local", "produce p99, wal mode, 2,000 msg/s")] is True
    # bound: 200 ms flush interval + 2 x 20 ms
    assert verdicts[("latency", "s3", "produce p99, object mode, 2,000 msg/s")] is False
    assert verdicts[("memory", "local", "broker RSS at 1,000 partitions under load (VmHWM)")] is (
        False
    )
    assert verdicts[("cost", "s3", "PUTs per flush interval (6p)")] is None
    assert ratios(summ)["produce"]["local"]["produce_1KiB_mb_s"] == 1.5


def test_profile_summary_ranks_own_and_total_time(tmp_path: Path) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text("main;handle;decode 30\nmain;handle;write 10\nmain;idle 60\n")
    text = profile_summary(raw)
    own = text.split("own time:")[1].split("total time")[0].splitlines()
    assert own[1].split() == ["60.0%", "idle"]
    assert own[2].split() == ["30.0%", "decode"]
    assert "100.0%  main" in text
    assert "40.0%  handle" in text


def test_proxy_names_the_kind_of_object() -> None:
    assert _kind("/bench/ab12/log/00000000000000000007.tlc") == "log"
    assert _kind("/bench/ab12/snapshots/00000000000000000256.json?x-id=PutObject") == "snapshots"
    assert _kind("/bench?list-type=2&prefix=ab12/log/") == "bucket"


def test_proxy_counts_listings_as_list_and_names_the_area() -> None:
    assert _verb("GET", "/bench?list-type=2&prefix=ab12%2Fsegments%2F") == "LIST"
    assert _verb("GET", "/bench/ab12/segments/t/0/5-1-ab.tls") == "GET"
    assert _verb("DELETE", "/bench/ab12/streams/s/log/1.tlc") == "DELETE"
    assert _area("/bench/ab12/segments/t/0/5-1-ab.tls?x-id=PutObject") == "segments"
    assert _area("/bench/ab12/streams/s/log/00000000000000000007.tlc") == "streams"
    assert _area("/bench?list-type=2&prefix=ab12%2Fstreams%2F") == "streams"
    assert _area("/bench/ab12/log/00000000000000000007.tlc") == "other"


def test_counts_subtract_by_area() -> None:
    before = Counts()
    after = Counts()
    after.areas.update({"PUT segments": 3, "PUT streams": 10})
    after.area_sent_bytes.update({"PUT segments": 300})
    diff = after - before
    assert diff.areas["PUT segments"] == 3
    assert diff.area_sent_bytes["PUT segments"] == 300


def _run(partitions: int = 6, **kw: float) -> cost_model.TidelogRun:
    args: dict[str, Any] = {
        "rate_b_s": 10e6,
        "partitions": partitions,
        "flush_puts_s": 5.0,
        "commit_bytes_per_b": 1.0,
        "segment_bytes_per_b": 1.0,
        "chunks_per_flush": float(partitions),
        "replay_gets_per_gb": 0.0,
    }
    return cost_model.TidelogRun(**{**args, **kw})


def test_segments_fill_by_size_unless_segment_ms_comes_first() -> None:
    # 6 partitions at 10 MB/s: 64 MiB each after ~40 s
    assert cost_model.segment_fill_s(10e6, 6) == pytest.approx((64 << 20) / (10e6 / 6))
    # a trickle: segment.ms (7 days) rolls first
    assert cost_model.segment_fill_s(1.0, 1) == 7 * 24 * 3600


def test_tidelog_month_stores_the_retention_of_segments_not_all_commits() -> None:
    month = cost_model.tidelog_month(_run())
    retained_gb = 10e6 * cost_model.RETENTION_S / 1e9
    window_gb = 10e6 * cost_model.commit_window_s(_run()) / 1e9
    assert month.stored_gb == pytest.approx(retained_gb + window_gb)
    assert window_gb < retained_gb / 1000  # the commit window does not grow with retention
    assert month.storage == pytest.approx(month.stored_gb * 0.023)


def test_tidelog_month_prices_flush_and_roll_puts_and_one_get_per_chunk() -> None:
    run = _run(partitions=1000)
    month = cost_model.tidelog_month(run)
    rolls_s = 1000 / cost_model.segment_fill_s(10e6, 1000)
    assert month.put == pytest.approx((5.0 + 2 * rolls_s) * cost_model.MONTH_S * 0.005 / 1000)
    assert month.get == pytest.approx(5.0 * 1000 * cost_model.MONTH_S * 0.0004 / 1000)
    # commits that carry only ops hold no chunks: at most one data flush per interval
    busier = cost_model.tidelog_month(_run(partitions=1000, flush_puts_s=6.0))
    assert busier.get == pytest.approx(month.get)
    assert busier.put > month.put
    # the janitor lists every segment object each pass, 1,000 keys a page
    assert month.list > 0
    assert month.total == pytest.approx(month.storage + month.put + month.get + month.list)


def test_all_history_month_is_a_month_of_what_was_put() -> None:
    month = cost_model.all_history_month(10e6, 400.0, 1.05, 38_000.0)
    gb = 10e6 * cost_model.MONTH_S / 1e9
    assert month.stored_gb == pytest.approx(gb * 1.05)
    assert month.put == pytest.approx(400.0 * cost_model.MONTH_S * 0.005 / 1000)
    assert month.get == pytest.approx(38_000.0 * gb * 0.0004 / 1000)
    assert month.list == 0.0


def test_summary_shows_each_target_and_the_head_of_each_profile(tmp_path: Path) -> None:
    summ: Summaries = {"latency": {"local": {"tidelog-wal": {"produce_p99_ms": _fig(9.0)}}}}
    (tmp_path / "p.txt").write_text("title\n10 samples\n\nown time:\n  90.0%  fdatasync\n")
    doc = {
        "meta": {
            "command": "tidelog bench",
            "started": "now",
            "rounds": 1,
            "elapsed_s": 1.0,
            "cpus": 2,
            "platform": "test",
            "note": "shared",
            "json": "r.json",
        },
        "figures": summ,
        "targets": [asdict(t) for t in read_targets(summ)],
        "profiles": ["p.txt"],
        "charts": ["r-latency.png"],
    }
    text = markdown_summary(doc, {"latency": "3. latency"}, tmp_path)
    assert "| produce p99, wal mode, 2,000 msg/s | <= 5 ms | 9.00 ms | **missed** |" in text
    assert "90.0%  fdatasync" in text
    assert "![r-latency](r-latency.png)" in text

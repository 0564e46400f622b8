"""What `tidelog bench` makes of its samples: the table, the targets, the JSON, charts, summary.

Owns: the shape of `bench/results/<timestamp>.json`, the terminal table (median (min-max)
per broker and the tidelog/peer ratio of medians), the reading of the issue's targets
against the medians (met / missed / not measured), PNG charts (matplotlib) and the
markdown summary. Guarantees: a figure that was not measured is `null` in the JSON and
"n/a" in the text, never a made-up number; targets are only read, never enforced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tidelog.bench.sides import TIDELOG_FLUSH_INTERVAL_MS

# figures[workload][setup][label][metric] -> samples (one per round)
Samples = dict[str, dict[str, dict[str, dict[str, list[float | None]]]]]
Summaries = dict[str, dict[str, dict[str, dict[str, dict[str, Any]]]]]

LABELS = {
    "local": ("tidelog-wal", "tansu-memory"),
    "s3": ("tidelog-object", "tansu-s3"),
}


@dataclass
class Target:
    name: str
    goal: str
    value: str
    met: bool | None  # None: not measured in this run
    workload: str
    setup: str


def _median(summ: Summaries, wl: str, setup: str, label: str, metric: str) -> float | None:
    try:
        value: float | None = summ[wl][setup][label][metric]["median"]
    except KeyError:
        return None
    return value


def ratios(summ: Summaries) -> dict[str, dict[str, dict[str, float | None]]]:
    """tidelog/peer ratio of medians for every metric both sides have."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for wl, setups in summ.items():
        for setup, sides in setups.items():
            ours, peer = LABELS[setup]
            if ours not in sides or peer not in sides:
                continue
            for metric, fig in sides[ours].items():
                theirs = sides[peer].get(metric, {}).get("median")
                mine = fig["median"]
                ratio = mine / theirs if mine is not None and theirs else None
                out.setdefault(wl, {}).setdefault(setup, {})[metric] = ratio
    return out


def read_targets(summ: Summaries) -> list[Target]:
    targets: list[Target] = []

    def ratio_target(wl: str, setup: str, metric: str, at_least: float, peer_name: str) -> None:
        ours, peer = LABELS[setup]
        a, b = (_median(summ, wl, setup, label, metric) for label in (ours, peer))
        met = None if a is None or b is None else a / b >= at_least
        value = "n/a" if met is None else f"{a:.1f} vs {b:.1f} MB/s = {a / b:.2f}x"  # type: ignore[operator]
        goal = f"{metric} >= {at_least:g}x {peer_name}"
        targets.append(Target(f"{metric} vs {peer_name}", goal, value, met, wl, setup))

    for wl, metric in (
        ("produce", "produce_1KiB_mb_s"),
        ("produce", "produce_100B_mb_s"),
        ("consume", "consume_hot_mb_s"),
    ):
        ratio_target(wl, "local", metric, 1.0, "Tansu memory engine")
    for wl, metric in (
        ("produce", "produce_1KiB_mb_s"),
        ("produce", "produce_100B_mb_s"),
        ("consume", "consume_hot_mb_s"),
        ("consume", "consume_cold_mb_s"),
    ):
        ratio_target(wl, "s3", metric, 2.0, "Tansu S3 engine")

    p99 = _median(summ, "latency", "local", "tidelog-wal", "produce_p99_ms")
    targets.append(
        Target(
            "produce p99, wal mode, 2,000 msg/s",
            "<= 5 ms",
            "n/a" if p99 is None else f"{p99:.2f} ms",
            None if p99 is None else p99 <= 5.0,
            "latency",
            "local",
        )
    )
    p99 = _median(summ, "latency", "s3", "tidelog-object", "produce_p99_ms")
    put = _median(summ, "latency", "s3", "s3-server", "put_p99_ms")
    bound = None if put is None else TIDELOG_FLUSH_INTERVAL_MS + 2 * put
    targets.append(
        Target(
            "produce p99, object mode, 2,000 msg/s",
            f"<= flush interval ({TIDELOG_FLUSH_INTERVAL_MS} ms) + 2x S3 PUT p99",
            "n/a"
            if p99 is None or bound is None or put is None
            else f"{p99:.1f} ms vs bound {bound:.1f} ms (S3 PUT p99 {put:.1f} ms)",
            None if p99 is None or bound is None else p99 <= bound,
            "latency",
            "s3",
        )
    )
    for metric in ("puts_per_flush_interval_6p", "puts_per_flush_interval_1000p"):
        value = _median(summ, "cost", "s3", "tidelog-object", metric)
        targets.append(
            Target(
                f"PUTs per flush interval ({metric.rsplit('_', 1)[1]})",
                "<= 1 per broker",
                "n/a" if value is None else f"{value:.2f}",
                None if value is None else value <= 1.0,
                "cost",
                "s3",
            )
        )
    rss = _median(summ, "memory", "local", "tidelog-wal", "peak_rss_mb_1000p")
    targets.append(
        Target(
            "broker RSS at 1,000 partitions under load (VmHWM)",
            "<= 250 MB",
            "n/a" if rss is None else f"{rss:.0f} MB",
            None if rss is None else rss <= 250,
            "memory",
            "local",
        )
    )
    return targets


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _cell(fig: dict[str, Any] | None) -> str:
    if fig is None or fig["median"] is None:
        return "n/a"
    text = f"{_fmt(fig['median'])} ({_fmt(fig['min'])}-{_fmt(fig['max'])})"
    if fig["missing"]:
        text += f" [{fig['missing']} missing]"
    return text


def table_rows(summ: Summaries, wl: str, setup: str) -> list[list[str]]:
    sides = summ[wl][setup]
    labels = list(sides)
    ours, peer = LABELS[setup]
    with_ratio = ours in sides and peer in sides
    header = ["metric", *labels, *(["tidelog/peer"] if with_ratio else [])]
    metrics: list[str] = []
    for label in labels:
        metrics += [m for m in sides[label] if m not in metrics]
    rows = [header]
    rat = ratios(summ).get(wl, {}).get(setup, {})
    for metric in metrics:
        row = [metric, *(_cell(sides[label].get(metric)) for label in labels)]
        if with_ratio:
            r = rat.get(metric)
            row.append("n/a" if r is None else f"{r:.2f}x")
        rows.append(row)
    return rows


def print_tables(summ: Summaries, titles: dict[str, str]) -> None:
    for wl, setups in summ.items():
        for setup in setups:
            print(f"\n{titles[wl]} [{setup}]  median (min-max)")
            rows = table_rows(summ, wl, setup)
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def print_targets(targets: Iterable[Target]) -> None:
    print("\ntargets")
    for t in targets:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t.met]
        print(f"  {verdict:12s} {t.name}: {t.goal} -- {t.value}")


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: object) -> object:
    if isinstance(obj, Target):
        return asdict(obj)
    raise TypeError(f"not JSON serialisable type={type(obj).__name__}")


_COLORS = {"tidelog": "#4c72b0", "tansu": "#dd8452"}  # anything else (the S3 server): grey


def charts(summ: Summaries, titles: dict[str, str], out: Path, stem: str) -> list[Path]:
    """One PNG per workload: a bar per broker for each metric, whiskers at min and max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    for wl, setups in summ.items():
        panels = [
            (setup, metric)
            for setup, sides in setups.items()
            for metric in dict.fromkeys(m for side in sides.values() for m in side)
        ]
        cols = min(4, len(panels))
        rows = (len(panels) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        for ax, (setup, metric) in zip(axes.flat, panels, strict=False):
            labels, medians, low, high = [], [], [], []
            for label, figures in setups[setup].items():
                f = figures.get(metric)
                if f is None or f["median"] is None:
                    continue
                labels.append(label)
                medians.append(f["median"])
                low.append(f["median"] - f["min"])
                high.append(f["max"] - f["median"])
            colors = [_COLORS.get(x.split("-")[0], "#8c8c8c") for x in labels]
            ax.bar(labels, medians, yerr=[low, high], capsize=4, color=colors)
            ax.set_title(f"{metric} [{setup}]", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        fig.suptitle(titles[wl], fontsize=10)
        fig.tight_layout()
        path = out / f"{stem}-{wl}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def profile_summary(raw: Path, top: int = 15) -> str:
    """Top functions by own and by total samples, from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    if not samples:
        return f"no samples in {raw.name}\n"
    lines = [f"{samples} samples (py-spy, 100 Hz, busy threads only)", "", "own time:"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / samples:5.1f}%  {frame}")
    lines += ["", "total time (frame anywhere on the stack):"]
    for frame, n in sorted(total.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / samples:5.1f}%  {frame}")
    return "\n".join(lines) + "\n"


def markdown_summary(
    doc: dict[str, Any], titles: dict[str, str], root: Path, where: Path | None = None
) -> str:
    """The summary; `root` is what the paths in `doc` are relative to, `where` the
    directory it is written to (default bench/results; links to docs/ are relative)."""
    where = where or root / "bench" / "results"
    docs = Path(os.path.relpath(root / "docs" / "benchmarks.md", where.resolve()))
    summ: Summaries = doc["figures"]
    meta = doc["meta"]
    out = [
        "# tidelog bench: latest results",
        "",
        f"Run `{meta['command']}` at {meta['started']} ({meta['rounds']} rounds, "
        f"{meta['elapsed_s']:.0f} s). Machine: {meta['cpus']} CPUs, {meta['platform']}. "
        f"{meta['note']}",
        "",
        "Figures are medians over rounds with (min-max); ratios are tidelog/peer of the "
        f"medians. Method and fairness: [docs/benchmarks.md]({docs.as_posix()}). "
        f"Raw figures: `{meta['json']}`.",
        "",
        "## Targets",
        "",
        "| target | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    for t in doc["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        out.append(f"| {t['name']} | {t['goal']} | {t['value']} | {verdict} |")
    if doc["profiles"]:
        out += [
            "",
            "## What limits the missed targets: profiles of tidelog (py-spy)",
            "",
            "Each workload behind a missed throughput or latency target, run once more on "
            "tidelog with py-spy attached to the broker; the ten functions with the most own "
            "time. Few samples mean the broker was mostly idle (waiting, not computing). "
            f"Reading: [docs/benchmarks.md]({docs.as_posix()}#reading-the-latest-run).",
        ]
        for profile in doc["profiles"]:
            path = root / profile
            head = path.read_text().split("total time")[0].strip().splitlines()[:13]
            out += ["", f"`{profile}`", "", "```", *head, "```"]
    for wl, setups in summ.items():
        out += ["", f"## {titles[wl]}"]
        for setup in setups:
            rows = table_rows(summ, wl, setup)
            out += ["", f"*{setup}*", "", "| " + " | ".join(rows[0]) + " |"]
            out.append("|" + "---|" * len(rows[0]))
            out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if doc["charts"]:
        out += ["", "## Charts", ""]
        out += [f"![{Path(c).stem}]({Path(c).name})" for c in doc["charts"]]
    return "\n".join(out) + "\n"

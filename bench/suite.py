"""`tidelog bench`: the standard benchmark suite, tidelog side by side with Tansu 0.6.

Owns: the command's options, the S3 server and counting proxy it starts, the order of runs
(workload by workload; within a workload, round by round, the two brokers alternating which
goes first so machine drift hits both), the profiled re-runs of missed targets, and where
results are written (`<out>/<timestamp>.json`, `<out>/<timestamp>-<workload>.png`,
`<out>/SUMMARY.md`, `<out>/<timestamp>-profile-*.txt`). Guarantees: every process it
starts (brokers, S3 server, py-spy) is stopped before it returns; a workload that fails is
recorded as failed with its error and the suite goes on; exit 0 when every run produced
its figures, 1 if one failed, 2 on a usage mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tidelog.bench.brokers import ROOT, S3Endpoint, empty_s3, s3_client, s3_server
from tidelog.bench.report import (
    Samples,
    Summaries,
    charts,
    markdown_summary,
    print_tables,
    print_targets,
    profile_summary,
    ratios,
    read_targets,
    write_json,
)
from tidelog.bench.s3proxy import CountingProxy
from tidelog.bench.sides import Side
from tidelog.bench.workloads import WORKLOADS, Context, Params, Workload, s3_put_latency, summarize

NOTE = (
    "Broker, peer, S3 server and clients all share this machine's cores, and other work "
    "on the machine while the suite runs moves the figures: absolute figures are noisy, "
    "the ratios (both brokers measured alternately) are what matter."
)


def run_bench(args: argparse.Namespace) -> int:
    params = Params.quick() if args.quick else Params()
    rounds = args.rounds or (1 if args.quick else 3)
    workloads = [w for w in WORKLOADS if not args.only or w.name in args.only]
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"tidelog bench: error: cannot create --out {out}: {exc}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    stem = started.strftime("%Y%m%dT%H%M%SZ")
    clock = time.monotonic()
    samples: Samples = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tidelog-bench-") as tmp, _s3(args.s3, Path(tmp)) as s3:
        proxy = CountingProxy(s3.url) if s3 is not None else None
        try:
            setups = _setups(Path(tmp), s3, proxy, args.no_peer)
            ctx = Context(proxy)
            print(f"tidelog bench: {rounds} round(s), setups {', '.join(setups)}; {NOTE}")
            for wl in workloads:
                for r in range(rounds):
                    for setup, sides in setups.items():
                        if setup not in wl.setups:
                            continue
                        order = sides if r % 2 == 0 else sides[::-1]
                        for side in order:
                            if side.kind == "tidelog" or wl.peer:
                                _run_one(wl, setup, side, params, ctx, samples, failures, r)
                                if side.s3 is not None and s3 is not None:
                                    empty_s3(s3)  # the next run starts on an empty server
                        if wl.name == "latency" and setup == "s3" and s3 is not None:
                            assert proxy is not None
                            _record(samples, wl, setup, "s3-server",
                                    s3_put_latency(proxy.url, s3.env, params))  # fmt: skip
            summ = _summaries(samples)
            titles = {w.name: w.title for w in WORKLOADS}
            print_tables(summ, titles)
            targets = read_targets(summ)
            print_targets(targets)
            profiles: list[str] = []
            if not args.no_profile:
                ctx.profile_dir = Path(tmp)
                profiles = _profile_missed(targets, setups, params, ctx, out, stem)
        finally:
            if proxy is not None:
                proxy.stop()
    doc: dict[str, Any] = {
        "meta": {
            "command": _command_line(),
            "started": started.isoformat(timespec="seconds"),
            "elapsed_s": time.monotonic() - clock,
            "rounds": rounds,
            "quick": args.quick,
            "s3": args.s3,
            "peer": not args.no_peer,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": NOTE,
            "json": str(_rel(out / f"{stem}.json")),
            "params": {k: v for k, v in vars(params).items()},
        },
        "figures": summ,
        "ratios": ratios(summ),
        "targets": targets,
        "profiles": profiles,
        "charts": [],
        "failures": failures,
    }  # fmt: skip
    doc["charts"] = [str(_rel(p)) for p in charts(summ, titles, out, stem)]
    write_json(out / f"{stem}.json", doc)
    doc = _reloaded(out / f"{stem}.json")
    (out / "SUMMARY.md").write_text(markdown_summary(doc, titles, ROOT, out))
    print(f"\nwrote {_rel(out / f'{stem}.json')}, {len(doc['charts'])} charts, "
          f"{_rel(out / 'SUMMARY.md')}")  # fmt: skip
    if failures:
        print(f"{len(failures)} run(s) failed, first: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def _command_line() -> str:
    rest = sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]
    return " ".join(["tidelog bench", *rest])


def _reloaded(path: Path) -> dict[str, Any]:
    import json

    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _rel(path: Path) -> Path:
    with contextlib.suppress(ValueError):
        return path.resolve().relative_to(ROOT)
    return path


@contextlib.contextmanager
def _s3(kind: str, workdir: Path) -> Iterator[S3Endpoint | None]:
    if kind == "none":
        yield None
        return
    with s3_server(kind, workdir) as s3:
        client: Any = s3_client(s3)
        client.create_bucket(Bucket=s3.bucket)
        yield s3


def _setups(
    workdir: Path, s3: S3Endpoint | None, proxy: CountingProxy | None, no_peer: bool
) -> dict[str, list[Side]]:
    setups = {"local": [Side("tidelog", "tidelog-wal", workdir, None)]}
    if not no_peer:
        setups["local"].append(Side("tansu", "tansu-memory", workdir, None))
    if s3 is not None and proxy is not None:
        via_proxy = S3Endpoint(proxy.url, s3.env, s3.bucket)
        setups["s3"] = [Side("tidelog", "tidelog-object", workdir, via_proxy)]
        if not no_peer:
            setups["s3"].append(Side("tansu", "tansu-s3", workdir, via_proxy))
    return setups


def _record(samples: Samples, wl: Workload, setup: str, label: str, figs: dict[str, Any]) -> None:
    per_metric = samples.setdefault(wl.name, {}).setdefault(setup, {}).setdefault(label, {})
    for metric, value in figs.items():
        per_metric.setdefault(metric, []).append(value)


def _run_one(
    wl: Workload,
    setup: str,
    side: Side,
    params: Params,
    ctx: Context,
    samples: Samples,
    failures: list[str],
    r: int,
) -> None:
    start = time.monotonic()
    try:
        figs = wl.run(side, params, ctx)
    except Exception as exc:
        failures.append(f"{wl.name} {setup} {side.label} round={r + 1}: {exc!r}")
        print(f"  {wl.name} [{setup}] {side.label} round {r + 1} FAILED: {exc!r}", flush=True)
        traceback.print_exc()
        return
    _record(samples, wl, setup, side.label, figs)
    shown = "  ".join(f"{k}={v:.3g}" if v is not None else f"{k}=n/a" for k, v in figs.items())
    print(
        f"  {wl.name} [{setup}] {side.label} round {r + 1} ({time.monotonic() - start:.0f} s): "
        f"{shown}",
        flush=True,
    )


def _summaries(samples: Samples) -> Summaries:
    return {
        wl: {
            setup: {
                label: {metric: summarize(values) for metric, values in metrics.items()}
                for label, metrics in sides.items()
            }
            for setup, sides in setups.items()
        }
        for wl, setups in samples.items()
    }


def _profile_missed(
    targets: list[Any],
    setups: dict[str, list[Side]],
    params: Params,
    ctx: Context,
    out: Path,
    stem: str,
) -> list[str]:
    """Re-run each workload behind a missed target once on tidelog, under py-spy."""
    by_name = {w.name: w for w in WORKLOADS}
    wanted = dict.fromkeys(
        (t.workload, t.setup) for t in targets if t.met is False and t.workload != "memory"
    )
    written: list[str] = []
    for wl_name, setup in wanted:
        side = next(s for s in setups.get(setup, []) if s.kind == "tidelog")
        raw = ctx.profile_dir / f"profile-{wl_name}-{side.label}.raw"  # type: ignore[operator]
        print(f"profiling {wl_name} [{setup}] {side.label} with py-spy", flush=True)
        try:
            by_name[wl_name].run(side, params, ctx)
        except Exception as exc:
            print(f"  profiled run failed: {exc!r}", flush=True)
        if not raw.exists():
            continue
        text = out / f"{stem}-profile-{wl_name}-{side.label}.txt"
        text.write_text(
            f"tidelog {wl_name} workload [{setup}], {side.label}\n" + profile_summary(raw)
        )
        shutil.copy(raw, out / f"{stem}-profile-{wl_name}-{side.label}.raw")
        written.append(str(_rel(text)))
    return written

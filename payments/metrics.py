"""`GET /metrics` of the payments API: the app's business SLOs for Prometheus.

Owns: the metric names (all `tidelog_payments_`), their meaning and the collector that
reads them at scrape time from where the app already keeps them — nothing is counted in
this process, so any API process over a data dir exports the same numbers:

- `tidelog_payments_projection_lag_events{projection}` (gauge): events on
  `payments.events` the projection has not applied (its stored offsets against the
  topic's high watermarks); absent for a projection whose lag is unknown (broker away,
  read model not built).
- `tidelog_payments_projection_events_applied_total{projection}` (counter).
- `tidelog_payments_outbox_events_total` (counter) and
  `tidelog_payments_outbox_unsent_events` (gauge: the relay's backlog, rows the broker
  has not acknowledged).
- `tidelog_payments_command_to_read_model_seconds` (histogram): per event, from the
  write model accepting the command (`occurred_at`, stamped in its write transaction)
  to the commit of the `payment_status` batch that made it visible (`visible_at`):
  what support waits before `/api/payments/<id>` shows a change. Computed over
  `payment_history`, so it covers every event in that read model (a rebuilt or deleted
  model restarts it, which Prometheus reads as a counter reset).
- `tidelog_payments_verifier_ok` (gauge 1/0), `..._verifier_mismatches` and
  `..._verifier_last_run_timestamp_seconds`: the last verifier run over this data dir
  (`verifier.json`, written by `tidelog payments demo`); absent until one ran.

Guarantees: exposition is prometheus-client's (`generate_latest` on a registry of its
own, `CONTENT_TYPE_LATEST`); a missing or half-created read model drops its samples,
never the scrape.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from tidelog.payments.app import AppStatus, Layout
from tidelog.payments.sqlite_db import connect
from tidelog.payments.verifier import load_result

PREFIX = "tidelog_payments_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# seconds; the bench measures p50 ~40 ms and p99 ~100-400 ms on two busy cores
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def latency_histogram(db_path: Path) -> tuple[list[tuple[str, float]], float] | None:
    """Cumulative (le, count) buckets and the sum in seconds of `visible_at - occurred_at`
    over `payment_history`; None when the read model does not exist (yet)."""
    if not db_path.exists():
        return None
    delay = "MAX(0, visible_at - occurred_at)"  # a clock step must not count as negative
    columns = ", ".join(f"COALESCE(SUM({delay} <= {b * 1000:g}), 0)" for b in LATENCY_BUCKETS_S)
    db = connect(db_path, readonly=True)
    try:
        row = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM({delay}), 0), {columns} FROM payment_history"
        ).fetchone()
    except sqlite3.OperationalError:  # the runner has created the file, not the tables
        return None
    finally:
        db.close()
    count, total_ms, *within = row
    pairs = zip(LATENCY_BUCKETS_S, within, strict=True)
    buckets = [(repr(float(b)), float(n)) for b, n in pairs]  # le="1.0", as Histogram
    buckets.append(("+Inf", float(count)))
    return buckets, total_ms / 1000


class PaymentsCollector(Collector):
    """Reads every metric at scrape time: `status` for lag and outbox, the layout's
    `payment_status` read model for latency, its `verifier.json` for the verifier."""

    def __init__(self, layout: Layout, status: Callable[[], AppStatus]) -> None:
        self.layout = layout
        self.status = status

    def collect(self) -> Iterable[Metric]:
        yield from self._app(self.status())
        latency = latency_histogram(self.layout.read_db("payment_status"))
        if latency is not None:
            hist = HistogramMetricFamily(
                f"{PREFIX}command_to_read_model_seconds",
                "From the write model accepting a command to its event being visible in the "
                "payment_status read model",
            )
            hist.add_metric([], latency[0], latency[1])
            yield hist
        yield from self._verifier()

    def _app(self, status: AppStatus) -> Iterable[Metric]:
        lag = GaugeMetricFamily(
            f"{PREFIX}projection_lag_events",
            "Events on payments.events the projection has not applied",
            labels=["projection"],
        )
        applied = CounterMetricFamily(
            f"{PREFIX}projection_events_applied",
            "Events the projection has applied to its read model",
            labels=["projection"],
        )
        for p in status.projections:
            applied.add_metric([p.name], p.applied)
            if p.lag is not None:
                lag.add_metric([p.name], p.lag)
        yield lag
        yield applied
        yield CounterMetricFamily(
            f"{PREFIX}outbox_events", "Events written to the outbox", value=status.outbox_events
        )
        yield GaugeMetricFamily(
            f"{PREFIX}outbox_unsent_events",
            "Outbox events the broker has not acknowledged yet (the relay's backlog)",
            value=status.unsent,
        )

    def _verifier(self) -> Iterable[Metric]:
        result = load_result(self.layout.verifier_result)
        if result is None:
            return
        yield GaugeMetricFamily(
            f"{PREFIX}verifier_ok",
            "1 if the last verifier run found every read model equal to the write model",
            value=int(result.ok),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}verifier_mismatches",
            "Rows and events the last verifier run found missing, extra or different",
            value=result.mismatches,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}verifier_last_run_timestamp_seconds",
            "When the last verifier run finished (Unix time)",
            value=result.at,
        )


def make_registry(layout: Layout, status: Callable[[], AppStatus]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PaymentsCollector(layout, status))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

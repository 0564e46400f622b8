"""`/metrics` of the payments API, read back with prometheus-client's own parser: lag per
projection, the outbox backlog, the command -> read-model latency histogram from the
payment_status read model's timestamps, and the verifier's persisted verdict."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tidelog.payments import events as ev
from tidelog.payments.api import ApiError, Raw, ReadApi, route
from tidelog.payments.app import AppStatus, Layout, ProjectionStatus
from tidelog.payments.metrics import exposition, make_registry
from tidelog.payments.projection_runner import open_read_model
from tidelog.payments.projections import PaymentStatusProjection
from tidelog.payments.sqlite_db import transaction
from tidelog.payments.verifier import ProjectionReport, load_result, save_result

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

STATUS = AppStatus(
    outbox_events=10,
    unsent=3,
    projections=[ProjectionStatus("payment_status", 4, 6), ProjectionStatus("ledger", None, 0)],
)
EVENT = ev.Event(
    event_id="e",
    type=ev.PAYMENT_AUTHORIZED,
    payment_id="p",
    merchant_id="m",
    customer_id="c",
    amount=100,
    currency="EUR",
    occurred_at=0,
    version=1,
    status="authorized",
    on_hold=False,
)


def scrape(layout: Layout, status: AppStatus = STATUS) -> Samples:
    text = exposition(make_registry(layout, lambda: status)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def with_latencies(layout: Layout, delays_ms: list[int]) -> None:
    """payment_history rows whose event became visible `delay` ms after its command."""
    projection = PaymentStatusProjection()
    db = open_read_model(layout.read_db(projection.name), projection)
    visible_at = 1_764_000_000_000
    with transaction(db):
        for i, delay in enumerate(delays_ms):
            event = dataclasses.replace(
                EVENT, event_id=f"e{i}", payment_id=f"p{i}", occurred_at=visible_at - delay
            )
            projection.apply(db, [event], visible_at)
    db.close()


def test_lag_and_outbox(tmp_path: Path) -> None:
    samples = scrape(Layout(tmp_path).create())
    lag = "tidelog_payments_projection_lag_events"
    assert samples[(lag, (("projection", "payment_status"),))] == 4
    assert (lag, (("projection", "ledger"),)) not in samples  # unknown: no sample, not 0
    assert samples[("tidelog_payments_outbox_unsent_events", ())] == 3
    assert samples[("tidelog_payments_outbox_events_total", ())] == 10
    applied = "tidelog_payments_projection_events_applied_total"
    assert samples[(applied, (("projection", "payment_status"),))] == 6


def test_latency_histogram_from_the_read_models_timestamps(tmp_path: Path) -> None:
    layout = Layout(tmp_path).create()
    name = "tidelog_payments_command_to_read_model_seconds"
    assert (f"{name}_count", ()) not in scrape(layout)  # no read model yet: no histogram
    with_latencies(layout, [3, 40, 700, -5])  # -5: a clock step counts as 0, not negative
    samples = scrape(layout)
    assert samples[(f"{name}_count", ())] == 4
    assert samples[(f"{name}_sum", ())] == pytest.approx(0.743)

    def bucket(le: str) -> float:
        return samples[(f"{name}_bucket", (("le", le),))]

    assert (bucket("0.005"), bucket("0.05"), bucket("0.5"), bucket("1.0"), bucket("+Inf")) == (
        2,
        3,
        3,
        4,
        4,
    )


def test_verifier_verdict_once_persisted(tmp_path: Path) -> None:
    layout = Layout(tmp_path).create()
    assert ("tidelog_payments_verifier_ok", ()) not in scrape(layout)  # never ran
    save_result(layout.verifier_result, [ProjectionReport("ledger", rows_checked=9)], at=1234.5)
    samples = scrape(layout)
    assert samples[("tidelog_payments_verifier_ok", ())] == 1
    assert samples[("tidelog_payments_verifier_last_run_timestamp_seconds", ())] == 1234.5
    save_result(layout.verifier_result, [ProjectionReport("ledger", mismatches=2, lag=1)], at=2e3)
    samples = scrape(layout)
    assert samples[("tidelog_payments_verifier_ok", ())] == 0
    assert samples[("tidelog_payments_verifier_mismatches", ())] == 2


def test_an_unreadable_verdict_counts_as_never_ran(tmp_path: Path) -> None:
    layout = Layout(tmp_path).create()
    layout.verifier_result.write_text("{not json")
    assert load_result(layout.verifier_result) is None
    assert ("tidelog_payments_verifier_ok", ()) not in scrape(layout)


def test_the_metrics_route(tmp_path: Path) -> None:
    layout = Layout(tmp_path).create()
    with_latencies(layout, [10])
    api = ReadApi(layout, None)  # no broker: lag unknown, the rest is local
    try:
        body = route(api, "/metrics")()
        assert isinstance(body, Raw)
        assert body.content_type.startswith("text/plain; version=")
        assert b"tidelog_payments_command_to_read_model_seconds_count 1.0" in body.body
        assert b"tidelog_payments_outbox_unsent_events 0.0" in body.body
        with pytest.raises(ApiError):
            route(api, "/metrics/x")
    finally:
        api.close()

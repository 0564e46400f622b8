"""The payments API's status page in headless chromium and its `/metrics`, against a real
broker with the app (relay and four projections) running a seeded workload.

The page must show the workload's payments and merchants as links that answer, show no
escaped markup (`&quot;`), refresh itself (a payment issued after it loaded appears
without the test reloading it) and log no console error; `/metrics` must report lag 0
once the projections caught up, a latency histogram over every event, and the verifier's
persisted verdict.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.broker_process import BrokerProcess
from tests.integration.browser import BrowserPage
from tests.integration.test_payments_parts import get, wait_for
from tidelog.payments.api import ReadApi, make_server
from tidelog.payments.app import CommandIssuer, Layout, PaymentsApp
from tidelog.payments.kafka_io import WatermarkReader, create_topics
from tidelog.payments.state_machine import Command
from tidelog.payments.verifier import save_result, verify_all
from tidelog.payments.workload import make_workload
from tidelog.payments.write_model import WriteModel, outbox_counts

pytestmark = pytest.mark.integration
WAIT_MS = 120_000  # an upper bound for conditions, never a measured threshold

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "broker") as running:
        create_topics(running.bootstrap)
        yield running


def scrape(base: str) -> Samples:
    status, text = get(f"{base}/metrics")
    assert status == 200, text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def authorize(layout: Layout, payment_id: str, merchant_id: str) -> None:
    model = WriteModel(layout.write_db)
    try:
        [result] = model.handle_many(
            [Command("authorize", f"{payment_id}:0", payment_id, merchant_id, "c-1", 1234, "EUR")]
        )
        assert result.accepted, result.reason
    finally:
        model.close()


def written(layout: Layout) -> tuple[list[str], list[str], int]:
    """Payment ids, merchant ids and outbox events in the write model."""
    model = WriteModel(layout.write_db)
    try:
        payments = [r[0] for r in model.db.execute("SELECT payment_id FROM payments")]
        merchants = [r[0] for r in model.db.execute("SELECT DISTINCT merchant_id FROM payments")]
        events, _ = outbox_counts(model.db)
    finally:
        model.close()
    return payments, merchants, events


def caught_up(base: str, events: int) -> bool:
    """Every projection at lag 0 and the latency histogram over every event."""
    samples = scrape(base)
    lags = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "tidelog_payments_projection_lag_events"
    }
    count = samples.get(("tidelog_payments_command_to_read_model_seconds_count", ()))
    return len(lags) == 4 and set(lags.values()) == {0} and count == events


def test_status_page_in_chromium_and_metrics(
    tmp_path: Path, broker: BrokerProcess, browser_page: BrowserPage
) -> None:
    layout = Layout(tmp_path / "app")
    app = PaymentsApp(layout, broker.bootstrap).start()
    model = WriteModel(layout.write_db)
    # 10 payments over 3 merchants: all of them fit on the page (15 rows each)
    CommandIssuer(model, make_workload(10, 3, seed=5), rate=0).run(threading.Event())
    model.close()
    api = ReadApi(layout, broker.bootstrap)
    server = make_server(api, "127.0.0.1", 0)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        payments, merchants, events = written(layout)
        assert len(payments) >= 5 and len(merchants) >= 2 and events > len(payments)
        wait_for("projections caught up (metrics)", lambda: caught_up(base, events))
        samples = scrape(base)
        name = "tidelog_payments_command_to_read_model_seconds"
        assert samples[(f"{name}_sum", ())] > 0
        assert samples[(f"{name}_bucket", (("le", "+Inf"),))] == events
        assert samples[("tidelog_payments_outbox_unsent_events", ())] == 0
        assert ("tidelog_payments_verifier_ok", ()) not in samples  # no verifier run yet

        watermarks = WatermarkReader(broker.bootstrap)
        try:
            reports = verify_all(layout.write_db, layout.read_dir, watermarks.high())
        finally:
            watermarks.close()
        save_result(layout.verifier_result, reports)
        samples = scrape(base)
        assert samples[("tidelog_payments_verifier_ok", ())] == 1
        assert samples[("tidelog_payments_verifier_mismatches", ())] == 0

        page = browser_page.page
        response = page.goto(f"{base}/", wait_until="load")
        assert response is not None and response.status == 200
        body = page.locator("body")
        expect(body).to_contain_text("tidelog payments")
        for payment_id in payments:
            expect(page.locator(f'a[href="/api/payments/{payment_id}"]')).to_have_text(payment_id)
        for merchant_id in merchants:
            for report in ("balance", "settlement"):
                href = f"/api/merchants/{merchant_id}/{report}"
                expect(page.locator(f'a[href="{href}"]').first).to_be_attached()
        expect(body).to_contain_text("events on topic")
        expect(body).not_to_contain_text("&quot;")
        expect(body).not_to_contain_text('{"broker"')

        # issued after the page loaded: it must appear by the page's own refresh
        authorize(layout, "pay-browser-1", "m-browser")
        link = page.locator('a[href="/api/payments/pay-browser-1"]')
        expect(link).to_have_text("pay-browser-1", timeout=WAIT_MS)
        expect(page.locator('a[href="/api/merchants/m-browser/settlement"]')).to_be_attached()

        other = browser_page.new_page()
        for href, expected in [
            ("/api/payments/pay-browser-1", '"payment_id": "pay-browser-1"'),
            (f"/api/merchants/{merchants[0]}/balance", f'"merchant_id": "{merchants[0]}"'),
            (f"/api/merchants/{merchants[0]}/settlement", '"days": ['),
            ("/api/merchants/m-browser/settlement", '"days": []'),  # authorized, none settled
        ]:
            answer = other.goto(f"{base}{href}", wait_until="load")
            assert answer is not None and answer.status == 200, href
            assert expected in json.dumps(answer.json(), indent=1), href
        assert browser_page.problems() == []

        wait_for("the new payment in every projection", lambda: caught_up(base, events + 1))
    finally:
        server.shutdown()
        server.server_close()
        api.close()
        app.stop()

"""The payments status page's HTML: data shown as text (escaped once, never as markup or
as escaped JSON), payment and merchant links to the JSON routes, no external asset."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from tidelog.payments.status_page import render

HOSTILE = """m<b>&"x'"""

LAG = {
    "outbox_events": 7,
    "outbox_unsent": 2,
    "projections": [
        {"name": "payment_status", "lag": 0, "events_applied": 7},
        {"name": "ledger", "lag": None, "events_applied": 0},
    ],
}


def payment(payment_id: str, merchant_id: str, status: str = "captured") -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "merchant_id": merchant_id,
        "status": status,
        "on_hold": 0,
        "authorized": 2500,
        "captured": 2500,
        "refunded": 0,
        "currency": "EUR",
        "updated_at": 1_764_000_000_000,
    }


class Page(HTMLParser):
    """What a browser would show and follow: text, tags, link targets, asset URLs."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.links: dict[str, str] = {}  # link text -> href
        self.assets: list[str] = []
        self._href: str | None = None
        self._in_style = False
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        a = dict(attrs)
        if tag == "a":
            self._href = a.get("href")
        for name in ("src", "href"):
            if tag != "a" and a.get(name):
                self.assets.append(str(a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            return
        self.text.append(data)
        if self._href is not None:
            self.links[data] = self._href

    def all_text(self) -> str:
        return " ".join(self.text)


def test_values_are_shown_as_text_not_markup() -> None:
    source = render(
        {"broker": "unreachable", "error": 'connect "refused" <eof>'},
        LAG,
        [payment("pay-1", HOSTILE, status="<script>alert(1)</script>")],
        [{"merchant_id": HOSTILE, "payments": 1, "last_activity": 1_764_000_000_000}],
    )
    page = Page(source)
    text = page.all_text()
    assert HOSTILE in text
    assert "<script>alert(1)</script>" in text and "script" not in page.tags
    assert 'connect "refused" <eof>' in text
    assert "&quot;" not in text and "&amp;" not in text  # escaped exactly once
    assert "b" not in page.tags


def test_broker_health_is_a_table_not_json() -> None:
    """The bug of issue 16: the page showed `{&quot;broker&quot;: &quot;up&quot;...`."""
    page = Page(render({"broker": "up", "events_on_topic": 42, "answered_in_ms": 1.5}, LAG, [], []))
    text = page.all_text()
    assert "{" not in text and '"broker"' not in text
    assert "up" in page.text and "42" in page.text and "events on topic" in page.text


def test_payments_and_merchants_link_to_their_json_routes() -> None:
    page = Page(
        render(
            {"broker": "up"},
            LAG,
            [payment("pay-1", "m-7"), payment("pay:2", "m/8")],
            [{"merchant_id": "m-7", "payments": 3, "last_activity": 1_764_000_000_000}],
        )
    )
    assert page.links["pay-1"] == "/api/payments/pay-1"
    assert page.links["pay:2"] == "/api/payments/pay%3A2"
    assert page.links["m/8"] == "/api/merchants/m%2F8/balance"  # one path segment
    assert page.links["balance"] == "/api/merchants/m-7/balance"
    assert page.links["settlement"] == "/api/merchants/m-7/settlement"
    assert "2025-11-24 16:00:00" in page.text  # updated_at and last activity, UTC


def test_lag_unknown_and_empty_tables_are_said_in_words() -> None:
    page = Page(render({"broker": "not configured"}, LAG, [], []))
    text = page.all_text()
    assert "unknown" in page.text  # the ledger's lag is None
    assert "no payments yet" in text and "no merchants yet" in text
    assert "2 not yet" in text


def test_self_contained_and_refreshing() -> None:
    source = render({"broker": "up"}, LAG, [], [])
    page = Page(source)
    assert 'http-equiv="refresh" content="2"' in source
    assert "script" not in page.tags
    assert all(url.startswith("data:") for url in page.assets), page.assets
    assert all(href.startswith("/") for href in page.links.values()), page.links

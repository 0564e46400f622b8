"""The payments API's HTML status page: the JSON routes' data rendered as tables.

Owns: the page's markup (no queries: `payments/api.py` passes what its routes return).
Guarantees: every value from a read model or the broker is escaped with `html.escape`
(ids in links are also URL-quoted), so the page shows data, never markup or `&quot;`;
it is self-contained (inline CSS, no script, no external asset: it works offline; the
favicon is an inline `data:` URL so the browser asks for nothing else) and refreshes
itself with a meta refresh every `REFRESH_S` seconds.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

REFRESH_S = 2

PAYMENT_COLUMNS = (
    ("payment_id", "payment"),
    ("merchant_id", "merchant"),
    ("status", "status"),
    ("on_hold", "on hold"),
    ("authorized", "authorized"),
    ("captured", "captured"),
    ("refunded", "refunded"),
    ("currency", "currency"),
    ("updated_at", "updated (UTC)"),
)

_STYLE = (
    "body{font-family:sans-serif;margin:2em}"
    "table{border-collapse:collapse;margin-bottom:1em}"
    "td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
    ".bad{color:#b00}"
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def utc(epoch_ms: object) -> str:
    if not isinstance(epoch_ms, int):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_ms / 1000))


def link(href: str, text: object) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def id_path(*parts: str) -> str:
    """`/api/...` with each id URL-quoted (an id is one path segment)."""
    return "/api/" + "/".join(quote(p, safe="") for p in parts)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """Cells are already-escaped HTML; an empty table says `empty` instead."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f"<p>{esc(empty)}</p>"
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{body}</table>"


def broker_section(health: Mapping[str, Any]) -> str:
    state = str(health.get("broker", "unknown"))
    css = "" if state == "up" else ' class="bad"'
    rows = [
        (esc(key.replace("_", " ")), f"<span{css}>{esc(value)}</span>")
        if key == "broker"
        else (esc(key.replace("_", " ")), esc(value))
        for key, value in health.items()
    ]
    return table(("", ""), rows, "no broker information")


def lag_section(lag: Mapping[str, Any]) -> str:
    outbox = (
        f"<p>outbox: {esc(lag['outbox_events'])} events, {esc(lag['outbox_unsent'])} not yet "
        "acknowledged by the broker</p>"
    )
    rows = [
        (
            esc(p["name"]),
            esc("unknown" if p["lag"] is None else p["lag"]),
            esc(p["events_applied"]),
        )
        for p in lag["projections"]
    ]
    return outbox + table(("projection", "lag (events)", "events applied"), rows, "no projections")


def payments_section(recent: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for p in recent:
        cells = []
        for key, _ in PAYMENT_COLUMNS:
            value = p.get(key)
            if key == "payment_id":
                cells.append(link(id_path("payments", str(value)), value))
            elif key == "merchant_id":
                cells.append(link(id_path("merchants", str(value), "balance"), value))
            elif key == "on_hold":
                cells.append("yes" if value else "no")
            elif key == "updated_at":
                cells.append(esc(utc(value)))
            else:
                cells.append(esc(value))
        rows.append(cells)
    return table([h for _, h in PAYMENT_COLUMNS], rows, "no payments yet")


def merchants_section(merchants: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        (
            esc(m["merchant_id"]),
            esc(m["payments"]),
            esc(utc(m["last_activity"])),
            link(id_path("merchants", str(m["merchant_id"]), "balance"), "balance")
            + " · "
            + link(id_path("merchants", str(m["merchant_id"]), "settlement"), "settlement"),
        )
        for m in merchants
    ]
    return table(("merchant", "payments", "last activity (UTC)", ""), rows, "no merchants yet")


def render(
    health: Mapping[str, Any],
    lag: Mapping[str, Any],
    recent: Sequence[Mapping[str, Any]],
    merchants: Sequence[Mapping[str, Any]],
    now: float | None = None,
) -> str:
    generated = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() if now is None else now))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<link rel="icon" href="data:,">
<title>tidelog payments</title>
<style>{_STYLE}</style>
</head><body>
<h1>tidelog payments</h1>
<h2>Broker</h2>
{broker_section(health)}
<h2>Projections</h2>
{lag_section(lag)}
<h2>Recent payments</h2>
{payments_section(recent)}
<h2>Recently active merchants</h2>
{merchants_section(merchants)}
<p>JSON: <a href="/api/lag">/api/lag</a> · <a href="/api/health">/api/health</a> ·
<a href="/api/ledger">/api/ledger</a> · Prometheus: <a href="/metrics">/metrics</a></p>
<p>generated {esc(generated)} UTC; refreshes every {REFRESH_S} s</p>
</body></html>
"""

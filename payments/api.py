"""`tidelog payments api`: the HTTP read API for support and finance, and a status page.

Owns: the routes, their JSON shapes and the HTML page (stdlib `http.server`, one thread
per request, read-only SQLite connections per request). Routes:

    GET /api/payments/<id>                 status, amounts and event history
    GET /api/merchants/<id>/balance        per currency: captured, refunded, ..., net
    GET /api/merchants/<id>/settlement     per UTC day and currency
    GET /api/ledger                        account balances; debits == credits per currency
    GET /api/lag                           outbox backlog and lag of every projection
    GET /api/health                        is the broker answering
    GET /metrics                           Prometheus: lag, outbox backlog, command ->
                                           read-model latency, verifier (payments/metrics.py)
    GET /                                  HTML (payments/status_page.py): broker health,
                                           lag, recent payments and merchants with links
                                           to the routes above; refreshes itself every 2 s

Guarantees: never writes; an unknown id is a 404 with a JSON error naming it; a
malformed id is a 400; a read model that does not exist yet is a 503.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tidelog.payments import metrics, status_page
from tidelog.payments.app import AppStatus, Layout, read_status
from tidelog.payments.kafka_io import WatermarkReader
from tidelog.payments.sqlite_db import connect

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class Raw:
    """A body sent as-is (not JSON, not the HTML page): `/metrics`."""

    body: bytes
    content_type: str


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class ReadApi:
    """The queries behind the routes; each opens its read model read-only."""

    def __init__(self, layout: Layout, bootstrap: str | None) -> None:
        self.layout = layout
        self._watermarks = WatermarkReader(bootstrap) if bootstrap else None
        self._lock = threading.Lock()  # one librdkafka client shared by request threads
        self.registry = metrics.make_registry(layout, self.status)

    def close(self) -> None:
        if self._watermarks is not None:
            self._watermarks.close()

    def _db(self, projection: str) -> sqlite3.Connection:
        path = self.layout.read_db(projection)
        if not path.exists():
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, f"read model not built yet path={path}")
        db = connect(path, readonly=True)
        db.row_factory = sqlite3.Row
        return db

    def payment(self, payment_id: str) -> dict[str, Any]:
        db = self._db("payment_status")
        try:
            row = db.execute(
                "SELECT * FROM payment_status WHERE payment_id = ?", (payment_id,)
            ).fetchone()
            if row is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"unknown payment payment_id={payment_id}")
            history = db.execute(
                "SELECT version, event_id, type, amount, status, occurred_at FROM payment_history"
                " WHERE payment_id = ? ORDER BY version",
                (payment_id,),
            ).fetchall()
        finally:
            db.close()
        out = dict(row)
        out["on_hold"] = bool(out["on_hold"])
        out["history"] = [dict(h) for h in history]
        return out

    def merchant_balance(self, merchant_id: str) -> dict[str, Any]:
        db = self._db("merchant")
        try:
            rows = db.execute(
                "SELECT * FROM merchant_balances WHERE merchant_id = ? ORDER BY currency",
                (merchant_id,),
            ).fetchall()
        finally:
            db.close()
        if not rows:
            raise ApiError(HTTPStatus.NOT_FOUND, f"unknown merchant merchant_id={merchant_id}")
        balances = []
        for r in rows:
            b = dict(r)
            b["net"] = b["captured"] - b["refunded"] - b["charged_back"]
            balances.append(b)
        return {"merchant_id": merchant_id, "balances": balances}

    def settlement(self, merchant_id: str) -> dict[str, Any]:
        db = self._db("merchant")
        try:
            rows = db.execute(
                "SELECT day, currency, captured, refunded, charged_back FROM settlement"
                " WHERE merchant_id = ? ORDER BY day, currency",
                (merchant_id,),
            ).fetchall()
            # a merchant with authorizations only has nothing settled yet: an empty report
            known = (
                rows
                or db.execute(
                    "SELECT 1 FROM merchant_balances WHERE merchant_id = ? LIMIT 1", (merchant_id,)
                ).fetchone()
            )
        finally:
            db.close()
        if not known:
            raise ApiError(HTTPStatus.NOT_FOUND, f"unknown merchant merchant_id={merchant_id}")
        days = [dict(r) | {"net": r["captured"] - r["refunded"] - r["charged_back"]} for r in rows]
        return {"merchant_id": merchant_id, "days": days}

    def ledger(self) -> dict[str, Any]:
        db = self._db("ledger")
        try:
            accounts = [
                dict(r)
                for r in db.execute(
                    "SELECT account, currency, debits, credits FROM ledger_balances"
                    " ORDER BY account, currency"
                )
            ]
        finally:
            db.close()
        totals: dict[str, dict[str, Any]] = {}
        for a in accounts:
            t = totals.setdefault(a["currency"], {"debits": 0, "credits": 0})
            t["debits"] += a["debits"]
            t["credits"] += a["credits"]
        for t in totals.values():
            t["balanced"] = t["debits"] == t["credits"]
        return {"totals": totals, "accounts": accounts}

    def status(self) -> AppStatus:
        with self._lock:
            return read_status(self.layout, self._watermarks)

    def lag(self) -> dict[str, Any]:
        status = self.status()
        return {
            "outbox_events": status.outbox_events,
            "outbox_unsent": status.unsent,
            "projections": [
                {"name": p.name, "lag": p.lag, "events_applied": p.applied}
                for p in status.projections
            ],
        }

    def health(self) -> dict[str, Any]:
        if self._watermarks is None:
            return {"broker": "not configured"}
        started = time.monotonic()
        with self._lock:
            try:
                high = self._watermarks.high(timeout=2.0)
            except Exception as exc:  # any client error means: not answering
                return {"broker": "unreachable", "error": str(exc)}
        return {
            "broker": "up",
            "events_on_topic": sum(high.values()),
            "answered_in_ms": round((time.monotonic() - started) * 1000, 1),
        }

    def recent(self, limit: int = 15) -> list[dict[str, Any]]:
        try:
            db = self._db("payment_status")
        except ApiError:
            return []
        try:
            return [
                dict(r)
                for r in db.execute(
                    "SELECT payment_id, merchant_id, status, on_hold, authorized, captured,"
                    " refunded, currency, updated_at FROM payment_status"
                    " ORDER BY updated_at DESC, payment_id LIMIT ?",
                    (limit,),
                )
            ]
        finally:
            db.close()

    def recent_merchants(self, limit: int = 15) -> list[dict[str, Any]]:
        """Merchants by their latest payment activity (payment_status.updated_at)."""
        try:
            db = self._db("payment_status")
        except ApiError:
            return []
        try:
            return [
                dict(r)
                for r in db.execute(
                    "SELECT merchant_id, COUNT(*) AS payments, MAX(updated_at) AS last_activity"
                    " FROM payment_status GROUP BY merchant_id"
                    " ORDER BY last_activity DESC, merchant_id LIMIT ?",
                    (limit,),
                )
            ]
        finally:
            db.close()

    def metrics(self) -> Raw:
        return Raw(metrics.exposition(self.registry), metrics.CONTENT_TYPE)


def status_page_html(api: ReadApi) -> str:
    return status_page.render(api.health(), api.lag(), api.recent(), api.recent_merchants())


def route(api: ReadApi, path: str) -> Callable[[], Any]:
    parts = [p for p in path.split("?")[0].split("/") if p]
    if parts == []:
        return lambda: status_page_html(api)
    if parts == ["metrics"]:
        return api.metrics
    if parts[:1] != ["api"]:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no such route path={path}")
    rest = parts[1:]
    for ident in rest[1:2]:
        if not _ID.match(ident):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"malformed id id={ident!r}")
    match rest:
        case ["payments", payment_id]:
            return lambda: api.payment(payment_id)
        case ["merchants", merchant_id, "balance"]:
            return lambda: api.merchant_balance(merchant_id)
        case ["merchants", merchant_id, "settlement"]:
            return lambda: api.settlement(merchant_id)
        case ["ledger"]:
            return api.ledger
        case ["lag"]:
            return api.lag
        case ["health"]:
            return api.health
    raise ApiError(HTTPStatus.NOT_FOUND, f"no such route path={path}")


def make_server(api: ReadApi, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                body = route(api, self.path)()
            except ApiError as exc:
                self._send(exc.status, {"error": str(exc)})
                return
            except sqlite3.Error as exc:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"read model error={exc}"})
                return
            self._send(HTTPStatus.OK, body)

        def _send(self, status: HTTPStatus, body: Any) -> None:
            if isinstance(body, Raw):
                data, content_type = body.body, body.content_type
            elif isinstance(body, str):
                data, content_type = body.encode(), "text/html; charset=utf-8"
            else:
                data, content_type = json.dumps(body, indent=1).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: a status page refreshing every 2 s would fill the terminal

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def run_api_command(data_dir: Path, listen: str, bootstrap: str | None, follow: bool) -> int:
    from tidelog.payments.app import PaymentsApp
    from tidelog.payments.broker_process import BrokerProcess, BrokerStartError, free_port
    from tidelog.payments.kafka_io import BrokerUnavailable, create_topics

    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        print(
            f"tidelog payments api: error: --listen must be HOST:PORT value={listen}",
            file=sys.stderr,
        )
        return 2
    layout = Layout(data_dir)
    if not data_dir.is_dir():
        print(
            f"tidelog payments api: error: no such directory data_dir={data_dir}", file=sys.stderr
        )
        return 2
    broker = None
    app = None
    try:
        if bootstrap is None:
            broker = BrokerProcess(layout.broker_dir, free_port()).start()
            bootstrap = broker.bootstrap
        if follow:
            create_topics(bootstrap)
            app = PaymentsApp(layout, bootstrap).start()
        api = ReadApi(layout, bootstrap)
        server = make_server(api, host, int(port_text))
    except (BrokerStartError, BrokerUnavailable, OSError) as exc:
        print(f"tidelog payments api: error: {exc}", file=sys.stderr)
        if broker is not None:
            broker.stop()
        return 1
    print(
        f"payments api listening on http://{host}:{server.server_address[1]}/ "
        f"(broker {bootstrap}{', following' if follow else ''}); Ctrl-C stops it",
        flush=True,
    )

    def shut_down(*_: object) -> None:  # serve_forever returns once shutdown() is called
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, shut_down)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        api.close()
        if app is not None:
            app.stop()
        if broker is not None:
            broker.stop()
    return 0

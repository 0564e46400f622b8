"""`--http-listen`: the broker's HTTP side, for Prometheus, orchestrators and people.

Owns: the aiohttp application and its routes (docs/observability.md):

    GET /metrics      Prometheus text exposition of the broker's registry
    GET /healthz      200 {"status": "ok"} while the process serves HTTP at all
    GET /readyz       200 once recovered and serving Kafka (storage loaded, WAL
                      replayed, partitions adopted); 503 with the reason before that,
                      while stopping and once fenced
    GET /api/status   the status document (status.py)
    GET /             the status page: one self-contained HTML file that fetches
                      /api/status every 2 s (no external assets)

Guarantees: started before the broker recovers (so /healthz and /readyz answer during
start-up) and stopped last; every answer is built on the event loop from memory, never
waiting on storage. Requests other than GET/HEAD get 405, unknown paths 404; aiohttp
bounds request lines, headers and bodies (a GET has none it reads).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from tidelog.broker.config_values import HostPort

if TYPE_CHECKING:
    from tidelog.broker.observability.metrics import BrokerMetrics
    from tidelog.broker.observability.status import StatusReport

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 5.0  # object-store call counts sampled for rates, page open or not


def _reason(text: str, status: int) -> web.Response:
    return web.json_response({"status": text}, status=status, dumps=json.dumps)


class HttpServer:
    def __init__(
        self,
        listen: HostPort,
        metrics: BrokerMetrics,
        report: StatusReport,
        why_not_ready: Callable[[], str],
    ) -> None:
        self.listen = listen
        self.metrics = metrics
        self.report = report
        self._why_not_ready = why_not_ready
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._page = files("tidelog.broker.observability").joinpath("status.html").read_bytes()
        self.bound: HostPort | None = None

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=1024)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/", self._index)
        return app

    async def start(self) -> HostPort:
        """Bind and serve; raises OSError when the address is taken."""
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen.host, self.listen.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(
                exc.errno, f"cannot listen on --http-listen {self.listen}: {exc.strerror}"
            ) from None
        sockets = self._runner.addresses
        host, port = (sockets[0][0], sockets[0][1]) if sockets else (self.listen.host, 0)
        self.bound = HostPort(str(host), int(port))
        self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())
        log.info("http listening address=%s paths=/metrics,/healthz,/readyz,/", self.bound)
        return self.bound

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _sample_forever(self) -> None:
        while True:
            self.report.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    # -- routes ------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return _reason("ok", 200)

    async def _readyz(self, request: web.Request) -> web.Response:
        why = self._why_not_ready()
        return _reason(why, 503) if why else _reason("ready", 200)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.report.build(), headers={"Cache-Control": "no-store"})

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

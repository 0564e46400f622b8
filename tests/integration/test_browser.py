"""The `browser_page` fixture itself: it must see what a bad page does, or the page tests
that assert `problems() == []` could not fail. Pages served from a local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.integration.browser import BrowserPage

pytestmark = pytest.mark.integration

PAGES = {
    "/clean": '<!doctype html><link rel="icon" href="data:,"><p id="x">hello</p>',
    "/bad": """<!doctype html><link rel="icon" href="data:,">
<img src="http://cdn.example.invalid/logo.png" alt="">
<script>console.error("boom from the page"); throw new TypeError("thrown on purpose");</script>
<p id="x">loaded</p>""",
}


@pytest.fixture
def site() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGES[self.path].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_clean_page_has_no_problems(browser_page: BrowserPage, site: str) -> None:
    browser_page.page.goto(f"{site}/clean", wait_until="load")
    assert browser_page.page.text_content("#x") == "hello"
    assert browser_page.problems() == []


def test_console_errors_page_errors_and_remote_requests_are_recorded(
    browser_page: BrowserPage, site: str
) -> None:
    browser_page.page.goto(f"{site}/bad", wait_until="load")
    assert browser_page.page.text_content("#x") == "loaded"
    problems = browser_page.problems()
    assert any("boom from the page" in p for p in browser_page.console_errors), problems
    assert any("thrown on purpose" in p for p in browser_page.page_errors), problems
    assert browser_page.external_requests == ["http://cdn.example.invalid/logo.png"], problems


def test_a_second_page_of_the_context_is_watched_too(browser_page: BrowserPage, site: str) -> None:
    browser_page.page.goto(f"{site}/clean", wait_until="load")
    other = browser_page.new_page()
    other.goto(f"{site}/bad", wait_until="load")
    assert any("thrown on purpose" in p for p in browser_page.page_errors), browser_page.problems()

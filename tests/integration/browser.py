"""Web pages loaded in a real headless browser: Debian's chromium, driven by Playwright.

`browser_page` (tests/integration/conftest.py) yields a `BrowserPage`: a fresh Playwright
page plus everything its browser context complained about — console messages of type
error, uncaught page errors and requests that tried to leave this machine (a page
served by tidelog must work offline: no CDN; such requests are aborted, and recorded),
from this page and any other the test opens with `new_page()`. A test loads its page,
checks what it shows (Playwright's `expect` retries until it holds, also across the
page's own reloads), then `assert browser_page.problems() == []`.

Only the system chromium is used (`make chromium` installs it; `executable_path` points
Playwright at it): `playwright install` is never run, nothing is downloaded. Without
chromium on PATH the tests that use the fixture are skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    WebError,
    sync_playwright,
)

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "chromium is not on PATH: `make chromium` installs Debian's chromium (needs root)"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass
class BrowserPage:
    page: Page
    context: BrowserContext
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything the page complained about or tried to fetch from elsewhere."""
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"request off this machine: {u}" for u in self.external_requests]
        )

    def new_page(self) -> Page:
        """Another page in the same context (its problems are recorded too)."""
        return self.context.new_page()


def _on_console(out: BrowserPage, message: ConsoleMessage) -> None:
    if message.type == "error":
        out.console_errors.append(f"{message.text} at {message.location}")


def _on_page_error(out: BrowserPage, error: WebError) -> None:
    out.page_errors.append(f"{error.error.name}: {error.error.message}")


def _only_local(out: BrowserPage, route: Route) -> None:
    url = route.request.url
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS:
        route.continue_()
        return
    out.external_requests.append(url)
    route.abort()


@contextmanager
def open_page(executable: str) -> Iterator[BrowserPage]:
    """A headless chromium (its own profile) with one page that records its problems."""
    # chromium refuses to run its sandbox as root; elsewhere Playwright's default applies
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            context = browser.new_context()
            out = BrowserPage(context.new_page(), context)
            context.on("console", lambda message: _on_console(out, message))
            context.on("weberror", lambda error: _on_page_error(out, error))
            context.route("**/*", lambda route: _only_local(out, route))
            yield out
            context.close()
        finally:
            browser.close()

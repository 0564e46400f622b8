"""Shared fixtures for integration tests. Each section belongs to one area; keep them apart.

S3-compatible servers section: `moto_s3` and `seaweed_s3` start a real server process once
per session and yield an `S3Server` (endpoint, credentials, region, `create_bucket()`).
While either is in use, the AWS credential variables name the test credentials and
nothing is read from ~/.aws or the instance metadata service.

Browser section: `browser_page` yields a page in headless chromium that records console
errors, page errors and requests off this machine (tests/integration/browser.py).
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator

import pytest

from tests.integration.broker_process import BrokerProcess
from tests.integration.browser import CHROMIUM, NO_CHROMIUM, BrowserPage, open_page
from tidelog.broker.processes.s3_servers import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    running_moto,
    running_seaweedfs,
)

# -- S3-compatible servers (storage) ---------------------------------------------------


@pytest.fixture(scope="session")
def s3_credentials() -> Iterator[None]:
    """Point boto3 (ours and any child process's) at the test credentials only."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory, s3_credentials: None) -> Iterator[S3Server]:
    with running_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def seaweed_s3(
    tmp_path_factory: pytest.TempPathFactory, s3_credentials: None
) -> Iterator[S3Server]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


# -- end of S3-compatible servers ------------------------------------------------------


@pytest.fixture
def brokers() -> Iterator[list[BrokerProcess]]:
    """Brokers a test starts (appends): any still running is killed afterwards, and each
    one's log is printed (shown when the test fails)."""
    started: list[BrokerProcess] = []
    yield started
    for b in started:
        if b.proc is not None and b.proc.poll() is None:
            b.kill()
        code = b.proc.returncode if b.proc is not None else None
        print(f"--- node {b.node_id} port {b.port} exit={code}\n{b.output()[-6000:]}")


# -- client libraries' leaked sockets (all tests) --------------------------------------


@pytest.fixture(autouse=True)
def collect_refused_client_sockets() -> Iterator[None]:
    """After each test, collect the sockets Python clients leak when a broker refuses
    their connect (kafka-python 3.0 never closes a socket whose connect a stopped broker
    refused; it still has the wildcard address), so their ResourceWarning does not fail
    whichever later test the garbage collector happens to run in. Only never-connected
    sockets are ignored: any other unclosed socket still fails the test it leaks in."""
    yield
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"unclosed <socket\.socket .*laddr=\('0\.0\.0\.0'",
            category=ResourceWarning,
        )
        gc.collect()


# -- a headless browser (web pages) -----------------------------------------------------


@pytest.fixture
def browser_page() -> Iterator[BrowserPage]:
    """A page in headless chromium (tests/integration/browser.py): `.page` is Playwright's
    Page; `.problems()` lists console errors, page errors and off-machine requests. Skips
    the test, saying why, when chromium is not installed (`make chromium`)."""
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    with open_page(CHROMIUM) as page:
        yield page

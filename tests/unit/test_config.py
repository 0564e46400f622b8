"""`tidelog serve` options: --shutdown-timeout-ms and --log-cleaner-backoff-ms from the
command line or environment."""

from __future__ import annotations

import argparse

import pytest

from tidelog.broker.config import add_serve_arguments, resolve_serve_config
from tidelog.broker.config_values import ConfigError


def _resolve(argv: list[str], env: dict[str, str]) -> int:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return resolve_serve_config(parser.parse_args(argv), env).shutdown_timeout_ms


def test_shutdown_timeout_defaults_to_thirty_seconds() -> None:
    assert _resolve([], {}) == 30_000


def test_shutdown_timeout_comes_from_the_command_line_before_the_environment() -> None:
    assert _resolve([], {"TIDELOG_SHUTDOWN_TIMEOUT_MS": "5000"}) == 5000
    assert _resolve(["--shutdown-timeout-ms", "0"], {"TIDELOG_SHUTDOWN_TIMEOUT_MS": "9"}) == 0


@pytest.mark.parametrize("bad", ["-1", "soon", "3600001"])
def test_a_bad_shutdown_timeout_names_the_option(bad: str) -> None:
    with pytest.raises(ConfigError, match="--shutdown-timeout-ms"):
        _resolve(["--shutdown-timeout-ms", bad], {})
    with pytest.raises(ConfigError, match="TIDELOG_SHUTDOWN_TIMEOUT_MS"):
        _resolve([], {"TIDELOG_SHUTDOWN_TIMEOUT_MS": bad})


def _cleaner_backoff(argv: list[str], env: dict[str, str]) -> int:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    config = resolve_serve_config(parser.parse_args(argv), env)
    assert config.store_config().log_cleaner_backoff_ms == config.log_cleaner_backoff_ms
    return config.log_cleaner_backoff_ms


def test_the_cleaner_backoff_is_kafkas_fifteen_seconds_unless_given() -> None:
    assert _cleaner_backoff([], {}) == 15_000
    assert _cleaner_backoff([], {"TIDELOG_LOG_CLEANER_BACKOFF_MS": "200"}) == 200
    assert _cleaner_backoff(["--log-cleaner-backoff-ms", "50"], {}) == 50


@pytest.mark.parametrize("bad", ["0", "-5", "soon"])
def test_a_bad_cleaner_backoff_names_the_option(bad: str) -> None:
    with pytest.raises(ConfigError, match="--log-cleaner-backoff-ms"):
        _cleaner_backoff(["--log-cleaner-backoff-ms", bad], {})

"""`tidelog serve` options: --shutdown-timeout-ms from the command line or environment."""

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

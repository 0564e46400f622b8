"""`tidelog serve --log-format`: the JSON formatter's lines, and the option itself."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys

import pytest

from tidelog.broker.config import add_serve_arguments, resolve_serve_config
from tidelog.broker.config_values import ConfigError
from tidelog.broker.log_format import TEXT_FORMAT, JsonFormatter, formatter


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("tidelog.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    rec.created = datetime.datetime(2026, 12, 3, 15, 55, 33, 714000, datetime.UTC).timestamp()
    return rec


def test_a_record_is_one_json_line_with_ts_level_logger_and_the_formatted_msg() -> None:
    line = JsonFormatter().format(record("joined node=%d stream=%s", 1, "s-n1"))
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2026-12-03T15:55:33.714Z",
        "level": "WARNING",
        "logger": "tidelog.test",
        "msg": "joined node=1 stream=s-n1",
    }


def test_an_exception_is_in_exc_and_a_newline_stays_inside_the_line() -> None:
    line = JsonFormatter().format(record("two\nlines", exc=True))
    assert "\n" not in line
    data = json.loads(line)
    assert data["msg"] == "two\nlines"
    assert data["exc"].startswith("Traceback (most recent call last):")
    assert data["exc"].endswith("ValueError: boom")


def test_text_stays_the_line_it_was() -> None:
    text = formatter("text")
    assert not isinstance(text, JsonFormatter)
    assert text._fmt == TEXT_FORMAT
    assert text.format(record("hello %s", "you")).endswith(" WARNING tidelog.test: hello you")
    assert isinstance(formatter("json"), JsonFormatter)


def _log_format(argv: list[str], env: dict[str, str]) -> str:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return resolve_serve_config(parser.parse_args(argv), env).log_format


def test_log_format_defaults_to_text_and_comes_from_flag_or_environment() -> None:
    assert _log_format([], {}) == "text"
    assert _log_format([], {"TIDELOG_LOG_FORMAT": "json"}) == "json"
    assert _log_format(["--log-format", "text"], {"TIDELOG_LOG_FORMAT": "json"}) == "text"
    with pytest.raises(ConfigError, match="--log-format: expected one of text, json"):
        _log_format(["--log-format", "xml"], {})

"""The broker's log line formats: `tidelog serve --log-format text|json`.

Owns: `TEXT_FORMAT` (the human line, `2026-12-03 15:55:33,714 INFO tidelog.broker: msg`)
and `JsonFormatter`, a stdlib `logging.Formatter` that writes each record as one JSON
object on one line, for log shippers.

Guarantees (json): every line is a complete JSON object with `ts` (ISO-8601 UTC with
milliseconds and `Z`, e.g. `2026-12-03T15:55:33.714Z`), `level` (`INFO`, ...), `logger`
(the logger's name) and `msg` (the message with its arguments filled in, exactly as the
text format shows it); `exc` (the formatted traceback) when the record carries an
exception, and `stack` when it carries a stack. A newline in a message or traceback
stays inside the JSON string, so one record is always one line.
"""

from __future__ import annotations

import datetime
import json
import logging

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")

__all__ = ["LOG_FORMATS", "TEXT_FORMAT", "JsonFormatter", "formatter"]


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        out: dict[str, str] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for a `--log-format` value (already checked to be one of LOG_FORMATS)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)

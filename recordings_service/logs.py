"""JSON-lines logs on stderr. Callers log ids and counts, never personal data or keys."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)

# LogRecord attributes that are not "extra" fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            # Which serve process (server.workers) wrote the line.
            "pid": record.process,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception types and where they happened, never their messages: those
            # carry values (SQL parameters, raw request bytes with a token in them).
            entry["exception"] = record.exc_info[0].__name__
            entry["traceback"] = _frames_only(record.exc_info[1])
        return json.dumps(entry, default=str)


def _frames_only(exc: BaseException | None) -> str:
    lines: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        lines.append(f"{type(exc).__module__}.{type(exc).__qualname__}")
        lines.extend(traceback.format_tb(exc.__traceback__))
        exc = exc.__cause__ or exc.__context__
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# Loggers that print SQL parameters, raw paths or query strings (customer ids, phone
# numbers) at their chattier levels: kept at WARNING whatever the service's level.
_TALKATIVE = ("sqlalchemy", "asyncpg", "alembic", "apscheduler")


def quiet_third_party_loggers() -> None:
    # aiohttp's access log prints raw paths and query strings; ours logs route templates.
    logging.getLogger("aiohttp.access").disabled = True
    for name in _TALKATIVE:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_third_party_loggers()

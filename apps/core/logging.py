"""JSON log lines that carry the ids of what is being worked on.

``log_context(conversation_id=..., task_id=...)`` binds ids for the current
task or request (contextvars, so it is safe under asyncio); every log record
emitted inside carries them as JSON fields.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    previous = _context.get()
    _context.set({**(previous or {}), **ids})
    try:
        yield
    finally:
        # Not ``reset(token)``: a streaming response resumes its generator in other tasks,
        # whose contexts are copies, where the token is not valid.
        _context.set(previous)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **(_context.get() or {}),
        }
        # Fields passed with ``extra={...}``.
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)

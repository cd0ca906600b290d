"""Structured logging: one JSON object per line, with the `extra=` fields of each call as keys.

Question text is never passed to the logger: requests are logged by id, path, status and timing.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from app.config import LogSettings

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        base = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        text = f"{base} {tail}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(settings: LogSettings, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.json_format else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_clinqa", False):
            root.removeHandler(old)
    handler._clinqa = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Libraries that chatter at INFO about every HTTP call or model shard.
    for noisy in ("httpx", "sentence_transformers", "transformers", "faiss", "bm25s", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(settings.level)))

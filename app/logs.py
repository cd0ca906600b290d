"""Structured logging: one JSON object per line, with the `extra=` fields of each call as keys.

Question text is never passed to the logger: requests are logged by id, path, status and timing, and a
question by its fingerprint (`question_fingerprint`: a short SHA-256 and the length). The full text goes
only to the opt-in audit log (`app.audit`). Every line written while a request is served carries its
`request_id` (`request_id_var`, set by the request middleware).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from app.config import LogSettings

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}

# Never below WARNING, whatever the level: libraries that chatter at INFO about every HTTP call or model
# shard, and libraries that can write request content at DEBUG or TRACE, so questions stay out of the
# logs: the access line with its query string (uvicorn.access), ASGI messages with bodies (uvicorn.asgi),
# form fields (python-multipart), HTTP/2 header values (hpack, h2) and raw HTTP exchanges (httpcore,
# urllib3: the openai backend's calls, hub downloads).
_QUIET = (
    "httpx",
    "httpcore",
    "urllib3",
    "hpack",
    "h2",
    "uvicorn.access",
    "uvicorn.asgi",
    "python_multipart",
    "multipart",
    "filelock",
    "huggingface_hub",
    "sentence_transformers",
    "transformers",
    "faiss",
    "bm25s",
)

request_id_var: ContextVar[str | None] = ContextVar("clinqa_request_id", default=None)


def question_fingerprint(text: str) -> dict[str, str | int]:
    """What the logs say about a question instead of its text: enough to correlate, nothing to read."""
    return {"question_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], "question_chars": len(text)}


class RequestIdFilter(logging.Filter):
    """Stamps the current request's id on every record logged while it is served (library lines too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = request_id_var.get()
            if request_id is not None:
                record.request_id = request_id
        return True


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
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_clinqa", False):
            root.removeHandler(old)
    handler._clinqa = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(settings.level)))

"""The opt-in audit log: who asked what, and which sources the answer cited, one JSON object per line.

This is the only place the server writes question text. The file is created with mode 0600 and rotated
by size (`audit.max_bytes`, `audit.backups`). Records go through a logger of their own that is not part
of the logging hierarchy, so no handler of the ordinary logs can ever see them.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from app.config import AuditSettings
from app.pipeline.runner import AskOutcome, SearchOutcome
from app.pipeline.types import ScoredChunk

AuditStatus = Literal["answered", "abstained", "searched", "error"]


class AuditSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    chunk_id: str
    doc_id: str
    title: str


class AuditRecord(BaseModel):
    """One line of the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ts: str = Field(description="UTC time the record was written, ISO 8601.")
    request_id: str
    key: str | None = Field(description="Name of the API key that asked, when keys are configured.")
    client: str | None = Field(description="The client's address as the server saw it.")
    endpoint: str = Field(description="/v1/ask, /v1/ask/stream or /v1/search.")
    question: str = Field(description="The full question (or search text).")
    status: AuditStatus
    verified: bool | None = Field(description="Answers: every sentence verified; none for searches and errors.")
    index_version: str | None
    sources: tuple[AuditSource, ...] = Field(description="Cited sources (answers) or returned results (searches).")
    total_ms: float | None


def _private_opener(path: str, flags: int) -> int:
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # also when the file already existed with a wider mode
    return fd


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating file handler whose files (the current one and each new one after a rollover) are 0600."""

    def _open(self) -> IO[str]:
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=_private_opener)


class AuditLog:
    """Appends `AuditRecord`s to the configured file; safe to call from many threads."""

    def __init__(self, settings: AuditSettings) -> None:
        if settings.path is None:
            raise ValueError("AuditLog needs audit.path; set CLINQA_AUDIT__PATH or leave the audit log off")
        self.path = Path(settings.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = _PrivateRotatingFileHandler(
            self.path, maxBytes=settings.max_bytes, backupCount=settings.backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        # Not from logging.getLogger: outside the hierarchy, no root handler or filter can reach these records.
        self._logger = logging.Logger("clinqa.audit", logging.INFO)
        self._logger.propagate = False
        self._logger.addHandler(self._handler)

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> AuditLog | None:
        """The audit log, or None when it is off (no path configured)."""
        return cls(settings) if settings.path is not None else None

    def write(self, record: AuditRecord) -> None:
        self._logger.info(record.model_dump_json())

    def close(self) -> None:
        self._handler.close()

    def record_ask(self, request: Request, endpoint: str, question: str, outcome: AskOutcome) -> None:
        answer = outcome.answer
        cited = {c.chunk_id: AuditSource(chunk_id=c.chunk_id, doc_id=c.doc_id, title=c.title) for c in answer.citations}
        self.write(
            _record(
                request,
                endpoint,
                question,
                status=answer.status,
                verified=answer.verified,
                index_version=outcome.index_version,
                sources=tuple(cited.values()),
                total_ms=outcome.timings_ms.get("total"),
            )
        )

    def record_search(self, request: Request, question: str, outcome: SearchOutcome, documents: dict) -> None:
        self.write(
            _record(
                request,
                "/v1/search",
                question,
                status="searched",
                verified=None,
                index_version=outcome.index_version,
                sources=tuple(_source(s, documents) for s in outcome.results),
                total_ms=outcome.timings_ms.get("total"),
            )
        )

    def record_error(self, request: Request, endpoint: str, question: str, index_version: str | None) -> None:
        self.write(_record(request, endpoint, question, "error", None, index_version, (), None))


def _source(scored: ScoredChunk, documents: dict) -> AuditSource:
    chunk = scored.chunk
    return AuditSource(chunk_id=chunk.id, doc_id=chunk.doc_id, title=documents[chunk.doc_id].title)


def _record(
    request: Request,
    endpoint: str,
    question: str,
    status: AuditStatus,
    verified: bool | None,
    index_version: str | None,
    sources: tuple[AuditSource, ...],
    total_ms: float | None,
) -> AuditRecord:
    return AuditRecord(
        ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
        request_id=getattr(request.state, "request_id", "-"),
        key=getattr(request.state, "api_key_name", None),
        client=request.client.host if request.client else None,
        endpoint=endpoint,
        question=question,
        status=status,
        verified=verified,
        index_version=index_version,
        sources=sources,
        total_ms=total_ms,
    )

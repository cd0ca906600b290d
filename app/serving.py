"""The pipeline a server is answering with, and swapping it for a new index version without downtime.

Each request takes a reference to the current pipeline when it starts, so a request in flight during a
reload finishes on the version it began with; new requests see the new version once it is fully loaded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from app.config import Settings
from app.pipeline.generate import GenerationError
from app.pipeline.rerank import RerankerLoadError
from app.pipeline.runner import Pipeline
from indexer.dense import EncoderLoadError
from indexer.store import IndexUnavailableError, read_index, resolve_version

log = logging.getLogger(__name__)


class ReloadInProgressError(RuntimeError):
    """Another reload is already running."""


@dataclass(frozen=True)
class ReloadResult:
    status: str  # "reloaded" | "unchanged"
    previous_version: str | None
    index_version: str


class PipelineHolder:
    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self._pipeline = pipeline
        self.not_ready_reason: str | None = None if pipeline else "the index is still loading"
        self._reload_lock = threading.Lock()

    @property
    def current(self) -> Pipeline | None:
        return self._pipeline

    def load(self) -> None:
        """Initial load; failures leave the server up but not ready, with the reason (GET /readyz)."""
        try:
            self._pipeline = Pipeline.load(self.settings)
            self.not_ready_reason = None
        except (IndexUnavailableError, EncoderLoadError, RerankerLoadError, GenerationError) as exc:
            self.not_ready_reason = str(exc)
            log.error("not ready", extra={"reason": str(exc)})
        except Exception as exc:  # anything else (a corrupt file a library reads its own way): still say why
            self.not_ready_reason = f"start-up failed: {exc.__class__.__name__}: {exc}"
            log.exception("not ready", extra={"reason": self.not_ready_reason})

    def reload(self) -> ReloadResult:
        """Load the version `current` points to (or the pinned one) and swap it in; models are reused."""
        if not self._reload_lock.acquire(blocking=False):
            raise ReloadInProgressError("a reload is already in progress")
        try:
            old = self._pipeline
            if old is None:
                self.load()
                if self._pipeline is None:
                    raise IndexUnavailableError(self.not_ready_reason or "no index")
                return ReloadResult("reloaded", None, self._pipeline.index_version)
            path = resolve_version(self.settings.index.root, self.settings.index.version)
            if path.name == old.index_version:
                return ReloadResult("unchanged", old.index_version, old.index_version)
            new = old.with_index(read_index(path))
            self._pipeline = new  # one reference assignment: atomic for readers
            log.info("index swapped", extra={"previous_version": old.index_version, "index_version": new.index_version})
            return ReloadResult("reloaded", old.index_version, new.index_version)
        finally:
            self._reload_lock.release()

    def reload_in_background(self) -> None:
        def run() -> None:
            try:
                self.reload()
            except (ReloadInProgressError, IndexUnavailableError) as exc:
                log.error("background reload failed", extra={"reason": str(exc)})

        if self._reload_lock.locked():
            raise ReloadInProgressError("a reload is already in progress")
        threading.Thread(target=run, name="clinqa-reload", daemon=True).start()

"""Cross-encoder reranking of the fused list (optional: without a model the fused order is kept)."""

from __future__ import annotations

import logging
import os

from app.config import RerankSettings
from app.pipeline.types import Query, ScoredChunk

log = logging.getLogger(__name__)


class RerankerLoadError(RuntimeError):
    """The configured cross-encoder could not be loaded."""


class CrossEncoderReranker:
    """Score (question, chunk) pairs with a sentence-transformers CrossEncoder; rerank the top N."""

    def __init__(self, settings: RerankSettings) -> None:
        if not settings.model:
            raise ValueError("CrossEncoderReranker needs rerank.model (a local path or a hub id)")
        self.settings = settings
        self.model = None

    def load(self) -> CrossEncoderReranker:
        from sentence_transformers import CrossEncoder

        path = self.settings.model
        if path and os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = CrossEncoder(path, max_length=self.settings.max_length, device=self.settings.device)
        except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot use this model"
            raise RerankerLoadError(f"cannot load cross-encoder {path!r}: {exc.__class__.__name__}: {exc}") from exc
        log.info("cross-encoder loaded", extra={"model": path})
        return self

    def run(self, query: Query, candidates: list[ScoredChunk]) -> list[ScoredChunk]:
        if self.model is None:
            raise RuntimeError("CrossEncoderReranker.load() was not called")
        head = candidates[: self.settings.top_n]
        if not head:
            return []
        pairs = [(query.rewritten, c.chunk.search_text) for c in head]
        scores = self.model.predict(pairs, batch_size=self.settings.batch_size, show_progress_bar=False)
        rescored = [
            c.model_copy(
                update={
                    "score": float(s),
                    "scores": {**c.scores, "rerank": float(s)},
                    "ranks": {"fused": position, **c.ranks},
                }
            )
            for position, (c, s) in enumerate(zip(head, scores, strict=True), start=1)
        ]
        rescored.sort(key=lambda c: -c.score)
        ranked = [c.model_copy(update={"ranks": {**c.ranks, "rerank": i}}) for i, c in enumerate(rescored, 1)]
        if self.settings.blend < 1.0:
            ranked = blend_with_fused(ranked, self.settings.blend)
        return ranked + candidates[self.settings.top_n :]


def blend_with_fused(reranked: list[ScoredChunk], weight: float, k: int = 60) -> list[ScoredChunk]:
    """Order by weight / (k + rerank rank) + (1 - weight) / (k + fused rank): the cross-encoder as one more
    vote beside the fused order rather than its replacement (useful while a trained reranker is weak)."""
    blended = [
        c.model_copy(update={"score": weight / (k + c.ranks["rerank"]) + (1 - weight) / (k + c.ranks["fused"])})
        for c in reranked
    ]
    blended.sort(key=lambda c: (-c.score, c.ranks["fused"]))
    return blended

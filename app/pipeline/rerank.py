"""Cross-encoder reranking of the fused list (optional: without a model the fused order is kept).

Each call has a deadline (`rerank.timeout_s`): the model runs on a small thread pool owned by the reranker
and the request stops waiting at the deadline with `RerankTimeoutError`, which the pipeline turns into a
degraded note and the fused order. A running torch forward pass cannot be interrupted from Python, so a
timed-out call is abandoned rather than killed: it finishes in the background and its result is dropped.
The pool is bounded so that a model that hangs ties up at most `_MAX_WORKERS` threads; later calls then
wait in its queue and time out too, instead of piling up threads. (At interpreter exit Python waits for a
call still running, as for any pool thread.)

The fast path on CPU (the `fast` preset): `rerank.backend="onnx"` runs an int8 ONNX Runtime export of the same
model (app/pipeline/onnx.py); `rerank.window_tokens` makes the model read only each chunk's best-matching
window (app/pipeline/windows.py) instead of the whole chunk; scores are cached per (model, question, chunk id,
index version) (app/pipeline/cache.py), so only chunks not scored before for that question reach the model.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.config import RerankSettings
from app.pipeline.cache import LruCache, rerank_key
from app.pipeline.onnx import onnx_available
from app.pipeline.types import Query, ScoredChunk
from app.pipeline.windows import best_window
from indexer.analysis import Analyzer

log = logging.getLogger(__name__)


# Cross-encoder calls that may run at once (torch already spreads one call over the CPU cores).
_MAX_WORKERS = 4


class RerankerLoadError(RuntimeError):
    """The configured cross-encoder could not be loaded."""


class RerankTimeoutError(TimeoutError):
    """The cross-encoder did not finish within `rerank.timeout_s`; the call was abandoned."""


class CrossEncoderReranker:
    """Score (question, chunk) pairs with a sentence-transformers CrossEncoder; rerank the top N."""

    def __init__(self, settings: RerankSettings) -> None:
        if not settings.model:
            raise ValueError("CrossEncoderReranker needs rerank.model (a local path or a hub id)")
        self.settings = settings
        self.model = None
        self._pool = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="clinqa-rerank")
        self.cache: LruCache[float] = LruCache(settings.cache_size)
        # What shapes a score besides (question, chunk): part of every cache key.
        self.model_key = (
            f"{settings.model}|{settings.backend}|{settings.precision}|window={settings.window_tokens}"
            f"|max_length={settings.max_length}"
        )
        self._analyzer = Analyzer()
        self._offsets_tokenizer = None  # a private copy of the model's tokenizer, for window offsets

    def load(self) -> CrossEncoderReranker:
        from sentence_transformers import CrossEncoder

        path = self.settings.model
        if path and os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            if self.settings.backend == "onnx" and not onnx_available():
                log.warning(
                    "onnxruntime is not installed: the cross-encoder runs on torch",
                    extra={"stage": "rerank", "fix": "pip install 'clinqa[onnx]'"},
                )
                self.settings = self.settings.model_copy(update={"backend": "torch"})
            if self.settings.backend == "onnx" and path and os.path.isdir(path):
                from app.pipeline.onnx import OnnxCrossEncoder

                try:
                    self.model = OnnxCrossEncoder(path, self.settings.precision, self.settings.max_length)
                except Exception as exc:  # onnxruntime missing, export or session errors: torch is the fallback
                    log.warning(
                        "cannot run the cross-encoder on ONNX Runtime: it runs on torch",
                        extra={"model": path, "error": f"{exc.__class__.__name__}: {exc}"},
                    )
                    self.model = CrossEncoder(path, max_length=self.settings.max_length, device=self.settings.device)
            else:  # torch, or a hub id (ONNX needs a local directory to export next to)
                self.model = CrossEncoder(path, max_length=self.settings.max_length, device=self.settings.device)
        except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot use this model"
            raise RerankerLoadError(f"cannot load cross-encoder {path!r}: {exc.__class__.__name__}: {exc}") from exc
        if self.settings.window_tokens:
            backend = copy.deepcopy(self.model.tokenizer.backend_tokenizer)
            backend.no_truncation()
            backend.no_padding()
            self._offsets_tokenizer = backend
        log.info(
            "cross-encoder loaded",
            extra={"model": path, "backend": self.settings.backend, "precision": self.settings.precision},
        )
        return self

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._offsets_tokenizer.encode(text, add_special_tokens=False).offsets)

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one reranker per server; words repeat across chunks
    def _terms_of(self, word: str) -> tuple[str, ...]:
        return tuple(self._analyzer.tokens(word))

    def _query_terms(self, query: Query) -> set[str]:
        return set(self._analyzer.tokens(query.bm25_text or query.rewritten))

    def passage(self, query: Query, chunk: ScoredChunk, term_weight: Callable[[str], float] | None = None) -> str:
        """What the cross-encoder reads for one chunk: the whole search text, or the breadcrumb and the
        chunk's best-matching window, `rerank.window_tokens` tokens in all (a breadcrumb longer than half of the
        budget leaves the window half of it)."""
        return self._passage(self._query_terms(query), chunk, term_weight)

    def _passage(self, terms: set[str], chunk: ScoredChunk, term_weight: Callable[[str], float] | None) -> str:
        c = chunk.chunk
        budget = self.settings.window_tokens
        if not budget or self._offsets_tokenizer is None:
            return c.search_text
        # The breadcrumb counts toward the budget, but leaves at least half of it to the window.
        crumb = len(self._offsets(c.breadcrumb))
        window = best_window(
            c.text,
            terms,
            max(budget // 2, budget - crumb),
            self._offsets,
            lambda word: list(self._terms_of(word)),
            term_weight or (lambda term: 1.0),
        )
        return f"{c.breadcrumb}\n{c.text[window.start : window.end]}"

    def run(
        self,
        query: Query,
        candidates: list[ScoredChunk],
        index_version: str = "",
        term_weight: Callable[[str], float] | None = None,
    ) -> list[ScoredChunk]:
        """Rerank the top `top_n`; `index_version` keys the score cache, `term_weight` (IDF) ranks the
        question's terms when choosing windows."""
        if self.model is None:
            raise RuntimeError("CrossEncoderReranker.load() was not called")
        head = candidates[: self.settings.top_n]
        if not head:
            return []
        keys = [rerank_key(self.model_key, query.rewritten, c.chunk.id, index_version) for c in head]
        cached = [self.cache.get(k) for k in keys]
        todo = [i for i, s in enumerate(cached) if s is None]
        if todo:
            terms = self._query_terms(query)  # once per question, not once per chunk
            pairs = [(query.rewritten, self._passage(terms, head[i], term_weight)) for i in todo]
            future = self._pool.submit(
                self.model.predict, pairs, batch_size=self.settings.batch_size, show_progress_bar=False
            )
            try:
                fresh = future.result(timeout=self.settings.timeout_s)
            except TimeoutError:  # concurrent.futures' TimeoutError is the builtin one since 3.11
                future.cancel()  # still queued: never runs; already running: finishes unobserved (module doc)
                raise RerankTimeoutError(f"reranker timed out after {self.settings.timeout_s:g} s") from None
            for i, score in zip(todo, fresh, strict=True):
                cached[i] = float(score)
                self.cache.put(keys[i], float(score))
        scores = cached
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

"""Question-term weighting shared by the evidence gate and the extractive generator.

Weights are BM25-style IDF from the index's own document frequencies; a term the corpus never uses
gets the highest weight, which is what makes "tibia" or "dog" count when judging coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.pipeline.types import ConceptMatch, Query
from indexer.analysis import Analyzer
from indexer.store import IndexData


class TermStatistics:
    def __init__(self, index: IndexData) -> None:
        bm25 = index.bm25
        self.vocab: dict[str, int] = bm25.vocab_dict
        self.df = np.diff(np.asarray(bm25.scores["indptr"]))
        self.n_docs = int(bm25.scores["num_docs"])

    def idf(self, token: str) -> float:
        tid = self.vocab.get(token)
        df = int(self.df[tid]) if tid is not None and tid < len(self.df) else 0
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class QueryTerms:
    """The question's weighted stems, and which stems each recognised concept accounts for."""

    weights: dict[str, float]
    concept_tokens: dict[str, frozenset[str]]
    surface: dict[str, str]  # stem -> a word from the question, for readable messages

    @property
    def total(self) -> float:
        return sum(self.weights.values())

    def coverage(self, tokens: set[str], concept_ids: set[str]) -> tuple[float, list[str]]:
        """IDF-weighted share of the question's stems found in `tokens` or via a shared concept."""
        covered = set(self.weights) & tokens
        for cid, stems in self.concept_tokens.items():
            if cid in concept_ids:
                covered |= stems
        missing = [self.surface[t] for t in self.weights if t not in covered]
        total = self.total
        share = sum(self.weights[t] for t in covered if t in self.weights) / total if total else 0.0
        return share, missing


def query_terms(query: Query, analyzer: Analyzer, stats: TermStatistics) -> QueryTerms:
    weights: dict[str, float] = {}
    surface: dict[str, str] = {}
    for word in analyzer.words(query.original):
        for stem in analyzer.tokens(word):
            if stem not in weights:
                weights[stem] = stats.idf(stem)
                surface[stem] = word
    return QueryTerms(weights, _concept_tokens(query.concepts, analyzer), surface)


def _concept_tokens(concepts: tuple[ConceptMatch, ...], analyzer: Analyzer) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for c in concepts:
        out.setdefault(c.id, set()).update(analyzer.tokens(c.matched_text))
    return {cid: frozenset(stems) for cid, stems in out.items()}

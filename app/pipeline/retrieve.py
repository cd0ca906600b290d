"""Retrieval channels: BM25 (bm25s), dense (FAISS over the sentence encoder), concept postings."""

from __future__ import annotations

import numpy as np

from app.config import RetrieveSettings
from app.pipeline.types import Query, RankedList
from indexer.analysis import Analyzer
from indexer.store import IndexData


def _top(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Positive-scoring rows, best first; ties broken by row for determinism."""
    if k <= 0 or scores.size == 0:
        return []
    k = min(k, scores.size)
    idx = np.argpartition(-scores, k - 1)[:k]
    order = sorted(idx.tolist(), key=lambda i: (-float(scores[i]), i))
    return [(i, float(scores[i])) for i in order if scores[i] > 0]


class Bm25Retriever:
    def __init__(self, index: IndexData, analyzer: Analyzer) -> None:
        self.index = index
        self.analyzer = analyzer

    def run(self, query: Query, top_k: int) -> RankedList:
        tokens = [t for t in self.analyzer.tokens(query.bm25_text) if t in self.index.bm25.vocab_dict]
        if not tokens:
            return RankedList(channel="bm25", hits=())
        scores = self.index.bm25.get_scores(tokens)
        return RankedList(channel="bm25", hits=tuple(_top(np.asarray(scores), top_k)))


class DenseRetriever:
    def __init__(self, index: IndexData, encoder) -> None:
        self.index = index
        self.encoder = encoder

    def embed_many(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 embeddings (rows), with the same model and normalisation as the index."""
        vec = self.encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vec, dtype=np.float32)

    def run(self, query: Query, top_k: int) -> RankedList:
        if self.index.dense.ntotal == 0:
            return RankedList(channel="dense", hits=())
        scores, rows = self.index.dense.search(self.embed_many([query.rewritten]), min(top_k, self.index.dense.ntotal))
        hits = tuple((int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0)
        return RankedList(channel="dense", hits=hits)


class ConceptRetriever:
    """Chunks that mention the question's concepts (tf-idf of the mentions), or, at half weight, their
    subtypes in the vocabulary: a question about anticoagulants also finds chunks naming apixaban."""

    SUBTYPE_WEIGHT = 0.5

    def __init__(self, index: IndexData) -> None:
        self.graph = index.graph

    def run(self, query: Query, top_k: int) -> RankedList:
        weights: dict[str, float] = {}
        for cid in dict.fromkeys(c.id for c in query.concepts):
            weights[cid] = 1.0
            for sub in self.graph.subtypes(cid):
                weights.setdefault(sub, self.SUBTYPE_WEIGHT)
        scores: dict[int, float] = {}
        for cid, weight in weights.items():
            idf = self.graph.idf(cid)
            for row, count in self.graph.postings(cid):
                scores[row] = scores.get(row, 0.0) + weight * idf * (1.0 + np.log(count))
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
        return RankedList(channel="concept", hits=tuple(ranked))


class HybridRetriever:
    """Runs every enabled channel and returns their ranked lists, in a fixed channel order."""

    def __init__(self, settings: RetrieveSettings, index: IndexData, analyzer: Analyzer, encoder) -> None:
        self.settings = settings
        self.bm25 = Bm25Retriever(index, analyzer)
        self.dense = DenseRetriever(index, encoder)
        self.concept = ConceptRetriever(index)

    def run(self, query: Query) -> list[RankedList]:
        lists = [
            self.bm25.run(query, self.settings.bm25_top_k),
            self.dense.run(query, self.settings.dense_top_k),
        ]
        if self.settings.concept_top_k > 0:
            lists.append(self.concept.run(query, self.settings.concept_top_k))
        return lists

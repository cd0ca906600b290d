"""Training groups mined from an index: (query, one relevant passage, BM25 hard negatives).

Two sources of queries, so a corpus without questions can still train a model:
- questions with known answers (MedQuAD and PubMedQA training splits, or any qrels): the positive is
  the gold document's chunk that BM25 likes best for the question;
- section titles as pseudo-queries ("Hypertension first-line drugs" for the chunks of that section);
  the negatives then come from other sections.
Negatives are drawn from the BM25 top `negative_depth` for the query, leaving out every chunk of a
gold document (or of the same section), so they are hard but not secretly relevant.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from app.config import TrainSettings
from indexer.analysis import Analyzer
from indexer.loaders.base import record_id
from indexer.store import IndexData


@dataclass(frozen=True)
class TrainingGroup:
    query: str
    positive: str
    negatives: tuple[str, ...]
    source: str  # "question" or "title"

    def as_dict(self) -> dict:
        return asdict(self)


class Miner:
    def __init__(self, index: IndexData, settings: TrainSettings, analyzer: Analyzer | None = None) -> None:
        self.index = index
        self.settings = settings
        self.analyzer = analyzer or Analyzer()
        self.rng = random.Random(settings.seed)
        self.rows_of_doc: dict[str, list[int]] = {}
        for row, chunk in enumerate(index.chunks):
            self.rows_of_doc.setdefault(record_id(chunk.doc_id), []).append(row)

    def _scores(self, text: str) -> np.ndarray:
        tokens = [t for t in self.analyzer.tokens(text) if t in self.index.bm25.vocab_dict]
        if not tokens:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.asarray(self.index.bm25.get_scores(tokens))

    def _negatives(self, scores: np.ndarray, excluded: set[int]) -> tuple[int, ...] | None:
        depth = self.settings.negative_depth
        top = np.argsort(-scores, kind="stable")[: depth + len(excluded)]
        pool = [int(r) for r in top if int(r) not in excluded and scores[r] > 0][:depth]
        if len(pool) < self.settings.negatives:
            return None
        return tuple(self.rng.sample(pool, self.settings.negatives))

    def _group(self, query: str, positive: int, negatives: tuple[int, ...], source: str) -> TrainingGroup:
        chunks = self.index.chunks
        return TrainingGroup(
            query=query,
            positive=chunks[positive].search_text,
            negatives=tuple(chunks[r].search_text for r in negatives),
            source=source,
        )

    def from_questions(self, questions: dict[str, str], gold: dict[str, Iterable[str]]) -> list[TrainingGroup]:
        """One group per question whose gold documents are in the index."""
        groups = []
        for qid, text in questions.items():
            rows = [r for doc in gold.get(qid, ()) for r in self.rows_of_doc.get(doc, [])]
            if not rows or not text.strip():
                continue
            scores = self._scores(text)
            positive = max(rows, key=lambda r: (scores[r], -r))
            negatives = self._negatives(scores, set(rows))
            if negatives is not None:
                groups.append(self._group(text, positive, negatives, "question"))
        return self._limit(groups)

    def from_titles(self) -> list[TrainingGroup]:
        """Section titles (with the document title) as pseudo-queries for the first chunk of their section."""
        groups = []
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for row, chunk in enumerate(self.index.chunks):
            key = (chunk.doc_id, chunk.section_path)
            if key in seen or len(chunk.section_path) < 2:
                continue
            seen.add(key)
            title = self.index.documents[chunk.doc_id].title if chunk.doc_id in self.index.documents else ""
            query = " ".join(dict.fromkeys([title, chunk.section_path[-1]]))
            siblings = self.rows_of_doc.get(record_id(chunk.doc_id), [])
            same_section = {r for r in siblings if self.index.chunks[r].section_path == key[1]}
            negatives = self._negatives(self._scores(query), same_section | {row})
            if negatives is not None:
                groups.append(self._group(query, row, negatives, "title"))
        return self._limit(groups)

    def _limit(self, groups: list[TrainingGroup]) -> list[TrainingGroup]:
        if self.settings.max_groups and len(groups) > self.settings.max_groups:
            groups = self.rng.sample(groups, self.settings.max_groups)
        return groups

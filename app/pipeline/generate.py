"""Answer generation behind one interface, and the default extractive generator.

Every generator turns (query, terms, evidence) into a `Draft`: sentences, each citing spans of
evidence chunks. `stream()` yields each `DraftSentence` as soon as it is final, then the whole
`Draft` last; `run()` is the same without the wait. The extractive generator quotes evidence
sentences verbatim (no model); the LLM generators live in `app.pipeline.llm`. The verifier checks
every sentence the same way whichever generator wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from app.config import GenerateSettings
from app.pipeline.terms import QueryTerms
from app.pipeline.types import Draft, DraftSentence, Query, ScoredChunk, SpanRef
from indexer.analysis import Analyzer, split_sentences
from knowledge.linker import ConceptLinker

_MIN_WORDS = 4


@dataclass(frozen=True)
class _Candidate:
    evidence_rank: int
    chunk_id: str
    start: int
    end: int
    text: str
    tokens: frozenset[str]
    score: float
    context: str  # what the encoder sees: the section heading and the sentence


Embedder = Callable[[list[str]], np.ndarray]


class GenerationError(RuntimeError):
    """The language model (in-process or behind an HTTP server) failed or ran past its deadline; the pipeline
    answers with the extractive generator instead (`generate.fallback="extractive"`, the default) or the API
    answers 502 ("error"). The message names the backend and the cause."""


class Generator(Protocol):
    name: str

    def stream(self, query: Query, terms: QueryTerms, evidence: list[ScoredChunk]) -> Iterator[DraftSentence | Draft]:
        """Yield each sentence when it is final, then the complete `Draft` as the last item."""
        ...

    def run(self, query: Query, terms: QueryTerms, evidence: list[ScoredChunk]) -> Draft: ...


def last_draft(items: Iterator[DraftSentence | Draft]) -> Draft:
    """Drain a `stream()` and return its closing `Draft`."""
    draft = None
    for item in items:
        draft = item
    if not isinstance(draft, Draft):
        raise RuntimeError("generator stream ended without a Draft")
    return draft


class ExtractiveGenerator:
    """Pick sentences by a blend of question-term coverage (IDF-weighted, concept-aware, with the
    section heading as context) and semantic similarity to the question (the dense encoder)."""

    def __init__(
        self, settings: GenerateSettings, analyzer: Analyzer, linker: ConceptLinker, embed: Embedder | None = None
    ) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.linker = linker
        self.embed = embed

    name = "extractive"

    def stream(self, query: Query, terms: QueryTerms, evidence: list[ScoredChunk]) -> Iterator[DraftSentence | Draft]:
        draft = self.run(query, terms, evidence)
        yield from draft.sentences
        yield draft

    def run(self, query: Query, terms: QueryTerms, evidence: list[ScoredChunk]) -> Draft:
        candidates = self._candidates(terms, evidence[: self.settings.evidence_chunks])
        if self.embed is not None and candidates:
            vectors = self.embed([query.rewritten] + [c.context for c in candidates])
            sims = vectors[1:] @ vectors[0]
            candidates = [
                replace(c, score=0.6 * c.score + 0.4 * max(0.0, float(sim)))
                for c, sim in zip(candidates, sims, strict=True)
            ]
        # Small preference for higher-ranked evidence, so ties go to the passage retrieval trusts most.
        candidates.sort(key=lambda c: (-(c.score - 0.03 * c.evidence_rank), c.evidence_rank, c.start))
        chosen: list[_Candidate] = []
        per_chunk: dict[str, int] = {}
        for cand in candidates:
            if cand.score < self.settings.min_sentence_score or len(chosen) >= self.settings.max_sentences:
                break
            if per_chunk.get(cand.chunk_id, 0) >= self.settings.max_sentences_per_chunk:
                continue
            if any(_jaccard(cand.tokens, c.tokens) >= 0.8 for c in chosen):
                continue
            chosen.append(cand)
            per_chunk[cand.chunk_id] = per_chunk.get(cand.chunk_id, 0) + 1
        chosen.sort(key=lambda c: (c.evidence_rank, c.start))
        return Draft(
            sentences=tuple(
                DraftSentence(text=c.text, cites=(SpanRef(chunk_id=c.chunk_id, start=c.start, end=c.end),))
                for c in chosen
            )
        )

    def _candidates(self, terms: QueryTerms, evidence: list[ScoredChunk]) -> list[_Candidate]:
        out: list[_Candidate] = []
        for rank, scored in enumerate(evidence):
            text = scored.chunk.text
            # A section heading ("Hypertension > Treatment > First-line drugs") is context that every
            # sentence under it inherits: list items rarely repeat the condition they are about.
            crumb_tokens = set(self.analyzer.tokens(scored.chunk.breadcrumb))
            crumb_concepts = {m.concept_id for m in self.linker.link(scored.chunk.breadcrumb)}
            for span in split_sentences(text):
                sentence = text[span.start : span.end]
                if len(sentence.split()) < _MIN_WORDS or sentence.endswith(":"):
                    continue  # fragments and list lead-ins do not stand alone as answers
                tokens = frozenset(self.analyzer.tokens(sentence))
                concepts = {m.concept_id for m in self.linker.link(sentence)}
                own, _ = terms.coverage(set(tokens), concepts)
                in_context, _ = terms.coverage(tokens | crumb_tokens, concepts | crumb_concepts)
                score = 0.5 * own + 0.5 * in_context
                context = f"{scored.chunk.section_path[-1] if scored.chunk.section_path else ''}: {sentence}"
                out.append(_Candidate(rank, scored.chunk.id, span.start, span.end, sentence, tokens, score, context))
        return out


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0

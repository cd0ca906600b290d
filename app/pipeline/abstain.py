"""The evidence gate: decide, before generating, whether the evidence can answer the question at all."""

from __future__ import annotations

from app.config import AbstainSettings
from app.pipeline.terms import QueryTerms
from app.pipeline.types import EvidenceCheck, ScoredChunk
from indexer.analysis import Analyzer
from knowledge.graph import KnowledgeGraph


class EvidenceGate:
    """Abstain when no passage is semantically close, or the question's key terms are absent."""

    def __init__(self, settings: AbstainSettings, analyzer: Analyzer, graph: KnowledgeGraph) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.graph = graph

    def run(self, terms: QueryTerms, evidence: list[ScoredChunk]) -> EvidenceCheck:
        if not evidence:
            return EvidenceCheck(sufficient=False, reason="no indexed passage matched the question", query_coverage=0.0)
        dense = [c.scores["dense"] for c in evidence if "dense" in c.scores]
        top_dense = max(dense) if dense else None
        tokens: set[str] = set()
        rows = {c.row for c in evidence}
        for c in evidence:
            tokens.update(self.analyzer.tokens(c.chunk.search_text))
        concept_ids = {cid for cid in terms.concept_tokens if rows & {r for r, _ in self.graph.postings(cid)}}
        coverage, missing = terms.coverage(tokens, concept_ids)
        reason = None
        if coverage < self.settings.min_query_coverage:
            reason = (
                f"the indexed guidelines do not cover this question: no passage mentions "
                f"{', '.join(repr(m) for m in missing[:6])} (term coverage {coverage:.2f} < "
                f"{self.settings.min_query_coverage:.2f})"
            )
        elif top_dense is None or top_dense < self.settings.min_dense_score:
            best = "none" if top_dense is None else f"{top_dense:.2f}"
            reason = (
                f"no indexed passage is close enough to the question (best similarity {best} < "
                f"{self.settings.min_dense_score:.2f})"
            )
        rerank = [c.scores["rerank"] for c in evidence if "rerank" in c.scores]
        top_rerank = max(rerank) if rerank else None
        floor = self.settings.min_rerank_score
        if reason is None and floor is not None and top_rerank is not None and top_rerank < floor:
            reason = (
                f"no indexed passage is relevant enough to the question (best cross-encoder score "
                f"{top_rerank:.2f} < {floor:.2f})"
            )
        return EvidenceCheck(
            sufficient=reason is None,
            top_rerank_score=top_rerank,
            reason=reason,
            top_dense_score=top_dense,
            query_coverage=round(coverage, 4),
            missing_terms=tuple(missing),
        )

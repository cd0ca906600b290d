"""Choose the sense of an ambiguous surface form ("PE": pulmonary embolism or physical examination?)
from the other concepts of the same text.

The evidence is the set of concepts linked unambiguously elsewhere in the text. A sense that is itself
spelled out there ("pulmonary embolism (PE)") wins outright; otherwise each sense is scored against the
context by a pluggable `context_score(candidate_id, context_ids) -> float`: corpus co-occurrence
(`KnowledgeGraph.context_score`, PMI plus relations) where the caller has it, or the number of context
concepts a sense is directly related to in the vocabulary graph (`relation_overlap`). No evidence, or a
tie, leaves the form ambiguous: guessing would hide the ambiguity from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge.graph import KnowledgeGraph

ContextScore = Callable[[str, set[str]], float]
"""(candidate concept id, ids of the other concepts in the text) -> how well the candidate fits."""


def relation_overlap(graph: KnowledgeGraph) -> ContextScore:
    """Score a sense by how many context concepts it is directly related to (any relation, either way):
    pulmonary embolism is related to DVT and diagnosed by CT pulmonary angiography; physical
    examination to neither."""

    def score(candidate_id: str, context_ids: set[str]) -> float:
        related = {other for _, _, other in graph.neighbours(candidate_id)}
        return float(len(related & context_ids))

    return score


@dataclass(frozen=True)
class SenseChoice:
    """The chosen sense, the others (best first) and every sense's score."""

    chosen: str
    alternatives: tuple[str, ...]
    scores: dict[str, float]


class AbbreviationDisambiguator:
    """Pick one concept for a surface form that names several (mostly short abbreviations)."""

    def __init__(self, context_score: ContextScore, min_score: float = 0.0) -> None:
        if min_score < 0:
            raise ValueError(f"min_score must be >= 0, got {min_score}")
        self.context_score = context_score
        self.min_score = min_score

    def choose(self, candidates: Sequence[str], context_ids: set[str]) -> SenseChoice | None:
        """The best-supported candidate, or None when the context does not single one out."""
        unique = list(dict.fromkeys(candidates))
        if len(unique) < 2:
            return None
        spelled_out = [c for c in unique if c in context_ids]
        if len(spelled_out) == 1:
            scores = {c: (1.0 if c == spelled_out[0] else 0.0) for c in unique}
        else:
            context = context_ids - set(unique)
            if not context:
                return None
            scores = {c: float(self.context_score(c, context)) for c in unique}
        ranked = sorted(unique, key=lambda c: (-scores[c], c))
        best, runner_up = scores[ranked[0]], scores[ranked[1]]
        if best <= self.min_score or best == runner_up:
            return None
        return SenseChoice(ranked[0], tuple(ranked[1:]), scores)

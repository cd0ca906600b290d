"""Citation verification: every answer sentence is checked against the exact passages it cites.

A sentence is `supported` when it is found verbatim in a cited chunk (at its stated offsets, or
elsewhere in that chunk, in which case the span is corrected); `partial` when its numbers all occur
in the cited chunk and it agrees in negation with, and shares nearly all its content words with, the
cited sentence it is closest to; otherwise `unsupported`. Citations of chunks that were not part of
the evidence are rejected outright.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from app.config import VerifySettings
from app.pipeline.types import Draft, ScoredChunk, SpanRef, SupportStatus
from indexer.analysis import Analyzer, split_sentences

# A number with the word right after it (its unit, usually): "5 mg" must not become "55 mg" even
# where "55" occurs elsewhere in the passage ("aged 55").
_QUANTITY_RE = re.compile(r"(\d+(?:[.,]\d+)?)\s*([A-Za-z%µ/]*)")
_NEGATION = frozenset({"not", "no", "never", "without", "neither", "nor", "avoid", "contraindicated"})
_RANK: dict[SupportStatus, int] = {"unsupported": 0, "partial": 1, "supported": 2}


class CheckedSentence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    cites: tuple[SpanRef, ...]
    support: SupportStatus
    reason: str | None = None


class CitationVerifier:
    def __init__(self, settings: VerifySettings, analyzer: Analyzer, min_partial_overlap: float = 0.8) -> None:
        if not 0 < min_partial_overlap <= 1:
            raise ValueError(f"min_partial_overlap must be in (0, 1], got {min_partial_overlap}")
        self.settings = settings
        self.analyzer = analyzer
        self.min_partial_overlap = min_partial_overlap

    def run(self, draft: Draft, evidence: list[ScoredChunk]) -> list[CheckedSentence]:
        chunks = {c.chunk.id: c.chunk.text for c in evidence}
        checked: list[CheckedSentence] = []
        for sentence in draft.sentences:
            if not sentence.cites:
                checked.append(
                    CheckedSentence(text=sentence.text, cites=(), support="unsupported", reason="no citation")
                )
                continue
            results = [self._check(sentence.text, ref, chunks) for ref in sentence.cites]
            best = max(_RANK[s] for s, _, _ in results)
            status = next(s for s, _, _ in results if _RANK[s] == best)
            # Keep only the citations that support the sentence as well as the best one does.
            cites = tuple(ref for s, ref, _ in results if _RANK[s] == best and s != "unsupported")
            reason = "; ".join(r for s, _, r in results if r and _RANK[s] == best) or None
            checked.append(CheckedSentence(text=sentence.text, cites=cites, support=status, reason=reason))
        return checked

    def _check(self, text: str, ref: SpanRef, chunks: dict[str, str]) -> tuple[SupportStatus, SpanRef, str | None]:
        chunk = chunks.get(ref.chunk_id)
        if chunk is None:
            return "unsupported", ref, f"cites {ref.chunk_id}, which is not in the evidence"
        if 0 <= ref.start <= ref.end <= len(chunk) and chunk[ref.start : ref.end] == text:
            return "supported", ref, None
        found = chunk.find(text) if text else -1
        if found >= 0:
            return "supported", SpanRef(chunk_id=ref.chunk_id, start=found, end=found + len(text)), None
        missing = _quantities(text) - _quantities(chunk)
        if missing:
            shown = ", ".join(sorted(f"{n} {u}".strip() for n, u in missing))
            return "unsupported", ref, f"numbers not in the cited passage: {shown}"
        # Compare with the chunk sentence the claim is closest to: negation must agree, terms must overlap.
        tokens = set(self.analyzer.tokens(text))
        best_overlap, best_words = 0.0, set()
        for span in split_sentences(chunk):
            candidate = chunk[span.start : span.end]
            overlap = len(tokens & set(self.analyzer.tokens(candidate))) / len(tokens) if tokens else 0.0
            if overlap > best_overlap:
                best_overlap, best_words = overlap, set(self.analyzer.words(candidate))
        if bool(set(self.analyzer.words(text)) & _NEGATION) != bool(best_words & _NEGATION):
            return "unsupported", ref, "negation differs from the cited passage"
        if best_overlap >= self.min_partial_overlap:
            return "partial", ref, f"paraphrase: {best_overlap:.0%} of its terms are in one cited sentence"
        return "unsupported", ref, f"at most {best_overlap:.0%} of its terms are in any cited sentence"


_UNITS = frozenset(
    """% mg g kg mcg µg microgram micrograms ml l mmhg mmol mol iu unit units mg/kg mg/dl mmol/l ml/min
    minute minutes min hour hours h day days week weeks month months year years times""".split()
)


def _quantities(text: str) -> set[tuple[str, str]]:
    """(number, unit) pairs; a number followed by a non-unit word is checked as a bare number."""
    out: set[tuple[str, str]] = set()
    for number, word in _QUANTITY_RE.findall(text):
        unit = word.lower()
        out.add((number, unit if unit in _UNITS else ""))
    return out

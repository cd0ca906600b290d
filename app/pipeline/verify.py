"""Citation verification: every answer sentence is checked against the exact passages it cites.

For each citation the verifier finds the evidence span the sentence rests on (the sentence itself
when it is quoted verbatim, else the cited sentence, or pair of adjacent sentences, that shares the
most terms with it) and runs the checks in order; the first that fails decides:

1. the cited chunk must be part of the evidence the generator was given (else: rejected);
2. a verbatim quote of the chunk is `supported` (its span corrected if the offsets were off);
3. numbers with their units, and frequency words ("twice", "daily"), must all occur in the span;
4. negation must agree: the sentence and the span carry the same number of negation cues, and no word of
   the sentence stands against its opposite in the span ("negative" cited to "positive");
5. the sentence's clinical concepts (linked through the knowledge graph, so any synonym counts) must
   all occur in the span or the section heading above it;
6. at least `min_overlap` of the sentence's content terms must occur in the span;
7. semantic similarity with the span (the dense encoder) must reach `min_similarity`, and, when an
   NLI cross-encoder is configured, the span must entail the sentence; failing only these gives
   `partial`: nothing contradicts the evidence, but it is not shown to say the same.

A sentence citing several chunks is supported when one of them supports it, or when the spans of
all of them together do (a sentence that joins two passages). An answer is verified only if every
sentence kept is `supported`.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from app.config import VerifySettings
from app.pipeline.types import Draft, DraftSentence, ScoredChunk, SpanRef, SupportStatus
from indexer.analysis import Analyzer, split_sentences
from knowledge.linker import ConceptLinker

log = logging.getLogger(__name__)

Embedder = Callable[[list[str]], np.ndarray]

# A number with the word right after it (its unit, usually): "5 mg" must not become "55 mg" even
# where "55" occurs elsewhere in the passage ("aged 55"). Thousands separators are folded first.
_QUANTITY_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(%|[A-Za-zµ]+(?:/[A-Za-z]+)?)?")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")
_UNITS = frozenset(
    """% mg g kg mcg µg microgram micrograms ml l dl mmhg mmol mol iu unit units mg/kg mg/dl mmol/l ml/min
    mg/m2 mg/day gy cgy mci mbq cm mm minute minutes min hour hours h day days week weeks month months year
    years times percent cycles cycle doses dose""".split()
)
_NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred
    thousand half once twice thrice daily weekly monthly hourly nightly yearly annually biweekly fortnightly
    single double triple""".split()
)
_NEGATION_RE = re.compile(
    r"\b(?:not|no|never|without|neither|nor|none|cannot|nothing|nobody|nowhere|absence|absent|lack|lacks|"
    r"lacked|lacking|fail|fails|failed|unable)\b|n't\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[a-z]+")
# Words whose opposite in the cited span reverses the claim without any negation cue ("p16 negative" cited to
# "p16 positive"): a claim word counts when the span has one of its opposites and not the word itself.
_OPPOSITE_PAIRS: tuple[tuple[str, str], ...] = (
    ("positive", "negative"),
    ("increase increases increased increasing", "decrease decreases decreased decreasing"),
    ("higher", "lower"),
    ("more", "fewer less"),
    ("benign", "malignant"),
    ("adult adults", "child children pediatric paediatric"),
    ("before", "after"),
    ("above", "below"),
    ("early", "late advanced"),
    ("improved", "worsened"),
    ("superior", "inferior"),
    ("men male", "women female"),
)
_OPPOSITES: dict[str, set[str]] = {}
for _left, _right in _OPPOSITE_PAIRS:
    for _word in _left.split():
        _OPPOSITES.setdefault(_word, set()).update(_right.split())
    for _word in _right.split():
        _OPPOSITES.setdefault(_word, set()).update(_left.split())
_PAIR_MARGIN = 0.15  # how much more of a sentence two adjacent cited sentences must hold than one
_RANK: dict[SupportStatus, int] = {"unsupported": 0, "partial": 1, "supported": 2}


class CheckedSentence(BaseModel):
    """A draft sentence with its verdict. `cites` are the evidence spans it rests on: the supporting
    ones when any support it, else the closest span of each cited chunk that was in the evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    cites: tuple[SpanRef, ...]
    support: SupportStatus
    reason: str | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class _Verdict:
    support: SupportStatus
    span: SpanRef | None
    reason: str | None = None
    similarity: float | None = None


class NliScorer:
    """An NLI cross-encoder (premise, hypothesis) -> probability of entailment."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        from sentence_transformers import CrossEncoder

        if os.path.isdir(model):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model = CrossEncoder(model, device=device)
        labels = {int(i): str(name).lower() for i, name in self.model.model.config.id2label.items()}
        entail = [i for i, name in labels.items() if name.startswith("entail")]
        if not entail:
            raise ValueError(f"NLI model {model!r} has no 'entailment' label (labels: {sorted(labels.values())})")
        self.entailment = entail[0]

    def entailment_probability(self, pairs: list[tuple[str, str]]) -> list[float]:
        logits = np.asarray(self.model.predict(pairs, convert_to_numpy=True, show_progress_bar=False), dtype=np.float64)
        logits = logits.reshape(len(pairs), -1)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return [float(p) for p in probs[:, self.entailment]]


class CitationVerifier:
    def __init__(
        self,
        settings: VerifySettings,
        analyzer: Analyzer,
        linker: ConceptLinker | None = None,
        embed: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.linker = linker
        self.embed = embed
        self.nli: NliScorer | None = None

    def load(self) -> CitationVerifier:
        """Load the NLI cross-encoder when one is configured (a no-op otherwise)."""
        if self.settings.nli_model and self.nli is None:
            self.nli = NliScorer(self.settings.nli_model)
            log.info("NLI model loaded", extra={"model": self.settings.nli_model})
        return self

    def run(self, draft: Draft, evidence: list[ScoredChunk]) -> list[CheckedSentence]:
        chunks = {c.chunk.id: c.chunk for c in evidence}
        return [self.check(sentence, chunks) for sentence in draft.sentences]

    def check(self, sentence: DraftSentence, chunks: dict) -> CheckedSentence:
        text = sentence.text.strip()
        if not sentence.cites:
            return CheckedSentence(text=sentence.text, cites=(), support="unsupported", reason="no citation")
        verdicts = [self._check_one(text, ref, chunks) for ref in sentence.cites]
        best = max(_RANK[v.support] for v in verdicts)
        in_evidence = [v for v in verdicts if v.span is not None]
        if best < _RANK["supported"] and len(in_evidence) > 1:
            joint = self._check_joint(text, in_evidence, chunks)
            if _RANK[joint.support] > best:
                spans = tuple(v.span for v in in_evidence if v.span is not None)
                return CheckedSentence(
                    text=sentence.text, cites=spans, support=joint.support, reason=joint.reason, similarity=None
                )
        top = [v for v in verdicts if _RANK[v.support] == best]
        cites = tuple(v.span for v in (top if best > 0 else in_evidence) if v.span is not None)
        reasons = list(dict.fromkeys(v.reason for v in top if v.reason))
        sims = [v.similarity for v in top if v.similarity is not None]
        return CheckedSentence(
            text=sentence.text,
            cites=cites,
            support=top[0].support,
            reason="; ".join(reasons) or None,
            similarity=round(max(sims), 4) if sims else None,
        )

    # --- one citation -------------------------------------------------------------------------------

    def _check_one(self, text: str, ref: SpanRef, chunks: dict) -> _Verdict:
        chunk = chunks.get(ref.chunk_id)
        if chunk is None:
            return _Verdict("unsupported", None, f"cites {ref.chunk_id}, which is not in the evidence")
        body = chunk.text
        if 0 <= ref.start < ref.end <= len(body) and body[ref.start : ref.end].strip() == text:
            return _Verdict("supported", ref, None, 1.0)
        found = body.find(text) if text else -1
        if found >= 0:
            return _Verdict("supported", SpanRef(chunk_id=ref.chunk_id, start=found, end=found + len(text)), None, 1.0)
        start, end = self._closest_span(text, body)
        span = SpanRef(chunk_id=ref.chunk_id, start=start, end=end)
        return self._judge(text, body[start:end], chunk.breadcrumb, span)

    def _check_joint(self, text: str, verdicts: list[_Verdict], chunks: dict) -> _Verdict:
        parts = [chunks[v.span.chunk_id].text[v.span.start : v.span.end] for v in verdicts if v.span]
        crumbs = " ".join(chunks[v.span.chunk_id].breadcrumb for v in verdicts if v.span)
        joint = self._judge(text, " ".join(parts), crumbs, None)
        if joint.reason and joint.support != "unsupported":
            return joint
        return _Verdict(joint.support, None, f"together, the cited passages: {joint.reason}" if joint.reason else None)

    def _closest_span(self, text: str, body: str) -> tuple[int, int]:
        """The sentence of `body` holding the largest share of `text`'s terms, or two adjacent sentences when
        together they hold clearly more (a sentence that joins two). Negation cues and numbers do not count
        here: they are checked against the span chosen, and must not choose it."""
        tokens = self._selection_tokens(text)
        spans = split_sentences(body) or []
        if not spans:
            return 0, len(body)

        def found(start: int, end: int) -> int:
            return len(tokens & self._selection_tokens(body[start:end]))

        best_single = max(((found(s.start, s.end), s.start, s.end) for s in spans), key=lambda x: x[0])
        pairs = [(found(a.start, b.end), a.start, b.end) for a, b in itertools.pairwise(spans)]
        best_pair = max(pairs, key=lambda x: x[0], default=None)
        # A pair must add at least two of the sentence's terms, and a clear share of them: one word more is
        # what a swapped drug or condition that happens to stand in the next sentence would add.
        if (
            best_pair is not None
            and best_pair[0] - best_single[0] >= 2
            and (best_pair[0] - best_single[0]) / len(tokens) >= _PAIR_MARGIN
        ):
            return best_pair[1], best_pair[2]
        return best_single[1], best_single[2]

    def _selection_tokens(self, text: str) -> set[str]:
        return {t for t in self.analyzer.tokens(_NEGATION_RE.sub(" ", text)) if not t[:1].isdigit()}

    def _judge(self, text: str, span_text: str, heading: str, span: SpanRef | None) -> _Verdict:
        """Checks 3-7 of the module docstring, on a sentence that is not a verbatim quote."""
        missing = _missing_quantities(text, span_text)
        if missing:
            return _Verdict("unsupported", span, f"numbers not in the cited passage: {', '.join(missing)}")
        claim_neg, span_neg = _negations(text), _negations(span_text)
        if sum(claim_neg.values()) != sum(span_neg.values()):
            return _Verdict(
                "unsupported",
                span,
                f"negation differs from the cited passage ({_describe_negation(claim_neg)} in the sentence, "
                f"{_describe_negation(span_neg)} in the passage)",
            )
        reversed_ = _opposites(text, span_text)
        if reversed_:
            return _Verdict("unsupported", span, f"contradicts the cited passage: {', '.join(reversed_)}")
        if self.linker is not None:
            absent = self._absent_concepts(text, f"{heading}\n{span_text}")
            if absent:
                return _Verdict("unsupported", span, f"not in the cited passage: {', '.join(absent)}")
        tokens = set(self.analyzer.tokens(text))
        found = set(self.analyzer.tokens(f"{heading} {span_text}"))
        overlap = len(tokens & found) / len(tokens) if tokens else 0.0
        if overlap < self.settings.min_overlap:
            return _Verdict(
                "unsupported",
                span,
                f"only {overlap:.0%} of its terms are in the cited passage (< {self.settings.min_overlap:.0%})",
            )
        similarity = None
        if self.embed is not None:
            vectors = self.embed([text, span_text])
            similarity = float(vectors[0] @ vectors[1])
            if similarity < self.settings.min_similarity:
                return _Verdict(
                    "partial",
                    span,
                    f"paraphrase: similarity {similarity:.2f} with the cited passage "
                    f"(< {self.settings.min_similarity})",
                    similarity,
                )
        elif overlap < 1.0:
            return _Verdict("partial", span, f"paraphrase: {overlap:.0%} of its terms are in the cited passage")
        if self.nli is not None:
            entail = self.nli.entailment_probability([(span_text, text)])[0]
            if entail < self.settings.nli_min_entailment:
                return _Verdict(
                    "partial",
                    span,
                    f"the NLI model finds it entailed with probability {entail:.2f} "
                    f"(< {self.settings.nli_min_entailment})",
                    similarity,
                )
        return _Verdict("supported", span, "paraphrase of the cited passage", similarity)

    def _absent_concepts(self, text: str, evidence: str) -> list[str]:
        assert self.linker is not None
        present = {m.concept_id for m in self.linker.link(evidence)}
        absent: dict[str, str] = {}
        for mention in self.linker.link(text):
            if mention.concept_id not in present and not mention.tolerant:
                absent.setdefault(mention.concept_id, f"'{mention.text}' ({mention.concept_id})")
        return list(absent.values())


def _quantities(text: str) -> tuple[Counter[str], set[tuple[str, str]], set[str]]:
    """Bare numbers (with multiplicity), (number, unit) pairs and number/frequency words in `text`."""
    text = _THOUSANDS_RE.sub("", text)
    numbers: Counter[str] = Counter()
    with_units: set[tuple[str, str]] = set()
    for number, word in _QUANTITY_RE.findall(text):
        value = number.rstrip("0").rstrip(".") if "." in number else number
        numbers[value] += 1
        unit = (word or "").lower()
        if unit in _UNITS:
            with_units.add((value, "%" if unit == "percent" else unit))
    words = {w for w in _WORD_RE.findall(text.lower()) if w in _NUMBER_WORDS}
    return numbers, with_units, words


def _missing_quantities(claim: str, evidence: str) -> list[str]:
    c_numbers, c_units, c_words = _quantities(claim)
    e_numbers, e_units, e_words = _quantities(evidence)
    missing = [f"{n} {u}" for n, u in sorted(c_units - e_units)]
    listed = {n for n, _ in c_units - e_units}
    missing += [n for n, count in sorted(c_numbers.items()) if count > e_numbers[n] and n not in listed]
    missing += sorted(c_words - e_words)
    return missing


def _opposites(claim: str, evidence: str) -> list[str]:
    """'positive' (sentence) vs 'negative' (passage) for each claim word whose opposite, not itself, is cited."""
    claim_words, evidence_words = set(_WORD_RE.findall(claim.lower())), set(_WORD_RE.findall(evidence.lower()))
    out = []
    for word in sorted(claim_words & _OPPOSITES.keys()):
        if word not in evidence_words and (opposite := sorted(_OPPOSITES[word] & evidence_words)):
            out.append(f"'{word}' in the sentence, '{opposite[0]}' in the passage")
    return out


def _negations(text: str) -> Counter[str]:
    return Counter(m.group(0).lower().replace("n't", "not") for m in _NEGATION_RE.finditer(text))


def _describe_negation(cues: Counter[str]) -> str:
    return ", ".join(f"'{cue}'" + (f" x{n}" if n > 1 else "") for cue, n in sorted(cues.items())) or "none"

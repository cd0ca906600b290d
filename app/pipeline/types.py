"""Typed data passed between pipeline stages. All frozen; each stage returns exactly one of these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from indexer.store import Chunk, DocumentInfo

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "ConceptMatch",
    "DocumentInfo",
    "Draft",
    "DraftSentence",
    "EvidenceCheck",
    "Generation",
    "Query",
    "RankedList",
    "ScoredChunk",
    "Sentence",
    "SpanRef",
    "StageNote",
    "SupportStatus",
]

SupportStatus = Literal["supported", "partial", "unsupported"]
Channel = Literal["bm25", "dense", "concept"]


def provenance(chunk: Chunk, doc: DocumentInfo) -> dict[str, object]:
    """Where a chunk comes from, as shown with every citation and source: the same fields in both."""
    return {
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "title": doc.title,
        "breadcrumb": chunk.breadcrumb,
        "section_path": chunk.section_path,
        "organisation": doc.organisation,
        "url": doc.url,
        "published": doc.published,
        "reviewed": doc.reviewed,
    }


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConceptMatch(_Frozen):
    id: str = Field(description="Concept id (UMLS CUI where known).")
    name: str = Field(description="Preferred name.")
    matched_text: str = Field(description="The words of the question that matched.")
    start: int
    end: int
    via: Literal["name", "synonym", "abbreviation"]
    semantic_types: tuple[str, ...] = ()
    negated: bool = Field(False, description='Inside a negation scope ("no evidence of sepsis").')
    alternatives: tuple[str, ...] = Field(
        (), description="Other concepts the same words could name, when this sense was chosen from context."
    )


class Query(_Frozen):
    """The rewritten question: what each retrieval channel searches with."""

    original: str
    rewritten: str = Field(description="The question with abbreviations expanded; used by the dense channel.")
    bm25_text: str = Field(description="Rewritten question plus concept synonyms; used by BM25.")
    expansions: tuple[str, ...] = Field(default=(), description="Terms added by rewriting.")
    concepts: tuple[ConceptMatch, ...] = ()


class RankedList(_Frozen):
    """One retrieval channel's result: (chunk row, score) best first."""

    channel: Channel
    hits: tuple[tuple[int, float], ...]


class ScoredChunk(_Frozen):
    chunk: Chunk
    row: int = Field(description="Row of the chunk in the index.")
    score: float = Field(description="The score the list is ordered by (rerank if present, else fused).")
    scores: dict[str, float] = Field(default_factory=dict, description="Per-channel scores: bm25, dense, ...")
    ranks: dict[str, int] = Field(default_factory=dict, description="1-based rank in each channel.")


class SpanRef(_Frozen):
    """A character span inside a chunk's text (a generator citing a whole passage gives 0..len(text))."""

    chunk_id: str
    start: int
    end: int


class DraftSentence(_Frozen):
    text: str
    cites: tuple[SpanRef, ...]


class Draft(_Frozen):
    """The generator's output: sentences, each citing spans of evidence chunks."""

    sentences: tuple[DraftSentence, ...]
    generator: str = Field("extractive", description="The backend that wrote it: extractive, llama_cpp, openai.")
    prompt: str | None = Field(None, description="Prompt template id (e.g. answer.v2); none for extractive.")
    model: str | None = Field(None, description="The language model used, when one was.")
    insufficient: bool = Field(False, description="The generator judged the evidence unable to answer.")
    dropped_evidence: tuple[str, ...] = Field(
        (), description="Chunk ids left out of the prompt because the model's context could not hold them."
    )
    redacted: tuple[str, ...] = Field(
        (), description="Identifier kinds (mrn, dob, ...) replaced by placeholders in the question sent to the model."
    )


class EvidenceCheck(_Frozen):
    """Whether the evidence is strong enough to answer from (decided before generation)."""

    sufficient: bool
    reason: str | None = None
    top_dense_score: float | None = None
    top_rerank_score: float | None = Field(None, description="Best cross-encoder score, when one ran.")
    query_coverage: float = Field(description="IDF-weighted share of the question's terms found in the evidence.")
    missing_terms: tuple[str, ...] = ()


class Citation(_Frozen):
    number: int = Field(description="The [n] marker used in sentences.")
    chunk_id: str
    doc_id: str
    title: str
    breadcrumb: str
    section_path: tuple[str, ...]
    organisation: str | None = None
    url: str | None = None
    published: str | None = None
    reviewed: str | None = None
    disclaimer: str | None = None
    quote: str = Field(description="The cited span, verbatim.")
    start: int = Field(description="Offset of the quote in the chunk's text.")
    end: int
    source_start: int = Field(description="Offset of the quote in the source document.")
    source_end: int
    chunk_text: str = Field(description="The whole cited chunk, for context around the quote.")


class Sentence(_Frozen):
    text: str
    citations: tuple[int, ...] = Field(description="Citation numbers supporting this sentence.")
    support: SupportStatus
    support_reason: str | None = None


class Generation(_Frozen):
    """How the answer was written: recorded in every response."""

    backend: str = Field(description="extractive, llama_cpp or openai.")
    model: str | None = None
    prompt: str | None = Field(None, description="Prompt template id, e.g. answer.v2 (none for extractive).")
    dropped_evidence: tuple[str, ...] = Field(
        (), description="Evidence chunk ids left out of the prompt because the model's context could not hold them."
    )
    redacted: tuple[str, ...] = Field(
        (),
        description="Kinds of identifiers (mrn, phone, dob, email, ssn) replaced by placeholders in the question "
        "before it was sent to the model; the values themselves are never recorded.",
    )


class StageNote(_Frozen):
    stage: str
    status: Literal["skipped", "degraded"]
    message: str


class Answer(_Frozen):
    status: Literal["answered", "abstained"]
    reason: str | None = Field(None, description="Why the answer abstained (or a caveat).")
    verified: bool = Field(description="True only when every sentence shown is supported by its citations.")
    text: str = Field(description="The answer as plain text with [n] markers.")
    sentences: tuple[Sentence, ...] = ()
    citations: tuple[Citation, ...] = ()

"""Request and response bodies of the HTTP API (also printed by `clinqa ask/search --json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.pipeline.runner import AskOutcome, SearchOutcome
from app.pipeline.types import (
    Citation,
    EvidenceCheck,
    Generation,
    Query,
    ScoredChunk,
    Sentence,
    StageNote,
    provenance,
)

# Hard upper bound for the schema; the configured limit (api.max_question_chars) is checked per request.
QUESTION_HARD_LIMIT = 100_000


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AskRequest(_Request):
    question: str = Field(
        min_length=1,
        max_length=QUESTION_HARD_LIMIT,
        description="The clinician's question in plain words.",
        examples=["first line treatment for hypertension in adults"],
    )


class SearchRequest(_Request):
    query: str = Field(min_length=1, max_length=QUESTION_HARD_LIMIT, description="Search text.")
    top_k: int = Field(10, ge=1, description="How many chunks to return (at most api.max_top_k).")


class Source(BaseModel):
    """A retrieved chunk with why it was chosen: per-channel scores and ranks."""

    chunk_id: str
    doc_id: str
    title: str
    breadcrumb: str
    section_path: tuple[str, ...]
    organisation: str | None
    url: str | None
    published: str | None
    reviewed: str | None
    score: float
    scores: dict[str, float]
    ranks: dict[str, int]
    text: str
    start: int
    end: int


class AskResponse(BaseModel):
    request_id: str
    status: Literal["answered", "abstained"]
    reason: str | None
    verified: bool = Field(description="True only when every sentence shown is supported by its citations.")
    answer: str = Field(description="Plain-text answer with [n] citation markers.")
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]
    sources: list[Source] = Field(description="The evidence considered, best first (closest sources when abstaining).")
    query: Query
    evidence_check: EvidenceCheck
    generation: Generation = Field(description="The generator, model and prompt template version used.")
    stages: list[StageNote] = Field(description="Stages skipped or degraded for this request.")
    timings_ms: dict[str, float]
    index_version: str
    notice: str = "clinqa is a demonstration: answers are not medical advice and not for clinical use."


class SearchResponse(BaseModel):
    request_id: str
    query: Query
    results: list[Source]
    stages: list[StageNote]
    timings_ms: dict[str, float]
    index_version: str


def source_of(scored: ScoredChunk, documents: dict) -> Source:
    chunk = scored.chunk
    doc = documents[chunk.doc_id]
    return Source(
        **provenance(chunk, doc),
        score=scored.score,
        scores=scored.scores,
        ranks=scored.ranks,
        text=chunk.text,
        start=chunk.start,
        end=chunk.end,
    )


def ask_response(outcome: AskOutcome, request_id: str, documents: dict) -> AskResponse:
    a = outcome.answer
    return AskResponse(
        request_id=request_id,
        status=a.status,
        reason=a.reason,
        verified=a.verified,
        answer=a.text,
        sentences=a.sentences,
        citations=a.citations,
        sources=[source_of(s, documents) for s in outcome.evidence],
        query=outcome.query,
        evidence_check=outcome.evidence_check,
        generation=outcome.generation,
        stages=outcome.notes,
        timings_ms=outcome.timings_ms,
        index_version=outcome.index_version,
    )


def search_response(outcome: SearchOutcome, request_id: str, documents: dict) -> SearchResponse:
    return SearchResponse(
        request_id=request_id,
        query=outcome.query,
        results=[source_of(s, documents) for s in outcome.results],
        stages=outcome.notes,
        timings_ms=outcome.timings_ms,
        index_version=outcome.index_version,
    )

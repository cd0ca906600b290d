from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from app.api.deps import get_pipeline
from app.api.errors import ApiError, ErrorBody
from app.pipeline.runner import Pipeline

router = APIRouter(prefix="/v1/concepts", tags=["concepts"])
_404 = {404: {"model": ErrorBody, "description": "Unknown concept id"}}


class ConceptHit(BaseModel):
    id: str
    name: str
    semantic_types: tuple[str, ...]
    matched: str
    via: str
    chunks: int


class Neighbour(BaseModel):
    id: str
    name: str | None
    relation: str
    direction: str


class Cooccurring(BaseModel):
    id: str
    name: str | None
    pmi: float
    chunks: int


class ConceptDetail(BaseModel):
    id: str
    name: str
    semantic_types: tuple[str, ...]
    semantic_type_names: tuple[str, ...] = ()
    synonyms: tuple[str, ...]
    abbreviations: tuple[str, ...]
    xrefs: tuple[str, ...]
    chunks: int
    neighbours: list[Neighbour]
    cooccurring: list[Cooccurring]


class ConceptChunk(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    breadcrumb: str
    mentions: int


class ConceptChunks(BaseModel):
    id: str
    total: int
    chunks: list[ConceptChunk]
    index_version: str


@router.get("", response_model=list[ConceptHit], summary="Find concepts by name, synonym or abbreviation")
def lookup(
    q: str = Query(min_length=1, max_length=200, description="A name, synonym or abbreviation."),
    limit: int = Query(10, ge=1, le=100),
    pipeline: Pipeline = Depends(get_pipeline),
) -> list[ConceptHit]:
    graph = pipeline.index.graph
    return [
        ConceptHit(
            id=c.id,
            name=c.name,
            semantic_types=c.semantic_types,
            matched=form,
            via=how,
            chunks=len(graph.postings(c.id)),
        )
        for c, form, how in graph.lookup(q, limit)
    ]


def _concept_or_404(pipeline: Pipeline, concept_id: str):
    concept = pipeline.index.graph.concept(concept_id)
    if concept is None:
        raise ApiError(404, "not_found", f"no concept {concept_id!r} in index {pipeline.index_version}", "concept_id")
    return concept


@router.get("/{concept_id}", response_model=ConceptDetail, responses=_404, summary="A concept and its neighbours")
def detail(concept_id: str, pipeline: Pipeline = Depends(get_pipeline)) -> ConceptDetail:
    graph = pipeline.index.graph
    c = _concept_or_404(pipeline, concept_id)

    def name(cid: str) -> str | None:
        other = graph.concept(cid)
        return other.name if other else None

    return ConceptDetail(
        id=c.id,
        name=c.name,
        semantic_types=c.semantic_types,
        synonyms=c.synonyms,
        abbreviations=c.abbreviations,
        xrefs=c.xrefs,
        chunks=len(graph.postings(c.id)),
        neighbours=[Neighbour(id=o, name=name(o), relation=rel, direction=d) for d, rel, o in graph.neighbours(c.id)],
        cooccurring=[Cooccurring(id=o, name=name(o), pmi=w, chunks=n) for o, w, n in graph.cooccurring(c.id)],
    )


@router.get(
    "/{concept_id}/chunks", response_model=ConceptChunks, responses=_404, summary="Chunks that mention a concept"
)
def chunks(
    concept_id: str, limit: int = Query(20, ge=1, le=200), pipeline: Pipeline = Depends(get_pipeline)
) -> ConceptChunks:
    _concept_or_404(pipeline, concept_id)
    postings = sorted(pipeline.index.graph.postings(concept_id), key=lambda p: (-p[1], p[0]))
    out = []
    for row, count in postings[:limit]:
        chunk = pipeline.index.chunks[row]
        doc = pipeline.index.documents[chunk.doc_id]
        out.append(
            ConceptChunk(
                chunk_id=chunk.id, doc_id=chunk.doc_id, title=doc.title, breadcrumb=chunk.breadcrumb, mentions=count
            )
        )
    return ConceptChunks(id=concept_id, total=len(postings), chunks=out, index_version=pipeline.index_version)

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.api.deps import get_pipeline
from app.pipeline.runner import Pipeline
from indexer.store import EncoderInfo

router = APIRouter(prefix="/v1", tags=["index"])


class IndexSummary(BaseModel):
    """What any caller may know about the index being served."""

    version: str
    index_id: str
    created_at: str
    encoder: EncoderInfo
    counts: dict[str, int]


class IndexDetails(IndexSummary):
    """The manifest summary for administrators: which documents, library versions and content hash."""

    content_hash: str
    libraries: dict[str, str]
    documents: list[dict[str, str | int | None]]


def index_summary(pipeline: Pipeline) -> IndexSummary:
    m = pipeline.index.manifest
    return IndexSummary(
        version=m.version, index_id=m.index_id, created_at=m.created_at, encoder=m.encoder, counts=m.counts
    )


def index_details(pipeline: Pipeline) -> IndexDetails:
    m = pipeline.index.manifest
    return IndexDetails(
        **index_summary(pipeline).model_dump(),
        content_hash=m.content_hash,
        libraries=m.libraries,
        documents=[
            {
                "doc_id": d.doc_id,
                "title": d.title,
                "reviewed": d.reviewed,
                "version": d.version,
                "chunks": d.n_chunks,
            }
            for d in m.documents
        ],
    )


@router.get(
    "/index",
    response_model=IndexSummary,
    summary="The index version being served: id, creation time, encoder and counts (details: /v1/admin/index)",
)
def index_info(pipeline: Pipeline = Depends(get_pipeline)) -> IndexSummary:
    return index_summary(pipeline)

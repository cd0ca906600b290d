from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.api.deps import get_pipeline
from app.pipeline.runner import Pipeline
from indexer.store import EncoderInfo

router = APIRouter(prefix="/v1", tags=["index"])


class IndexSummary(BaseModel):
    version: str
    index_id: str
    content_hash: str
    created_at: str
    encoder: EncoderInfo
    counts: dict[str, int]
    libraries: dict[str, str]
    documents: list[dict[str, str | int | None]]


@router.get("/index", response_model=IndexSummary, summary="The index version being served, with its manifest summary")
def index_info(pipeline: Pipeline = Depends(get_pipeline)) -> IndexSummary:
    m = pipeline.index.manifest
    return IndexSummary(
        version=m.version,
        index_id=m.index_id,
        content_hash=m.content_hash,
        created_at=m.created_at,
        encoder=m.encoder,
        counts=m.counts,
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

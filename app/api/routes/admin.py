from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import get_holder, get_pipeline
from app.api.errors import ApiError, ErrorBody
from app.api.routes.index import IndexDetails, index_details
from app.pipeline.runner import Pipeline
from app.serving import PipelineHolder, ReloadInProgressError
from indexer.store import IndexUnavailableError

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ReloadResponse(BaseModel):
    status: Literal["reloaded", "unchanged", "started"]
    previous_version: str | None
    index_version: str | None


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        202: {"model": ReloadResponse, "description": "Reload started in the background (wait=false)"},
        409: {"model": ErrorBody, "description": "A reload is already running"},
        503: {"model": ErrorBody, "description": "The new version could not be loaded; the old one keeps serving"},
    },
    summary="Load the version `indexes/current` points to and swap it in without downtime",
)
def reload_index(wait: bool = True, holder: PipelineHolder = Depends(get_holder)):
    before = holder.current.index_version if holder.current else None
    try:
        if not wait:
            holder.reload_in_background()
            body = ReloadResponse(status="started", previous_version=before, index_version=before)
            return JSONResponse(status_code=202, content=body.model_dump())
        result = holder.reload()
    except ReloadInProgressError as exc:
        raise ApiError(409, "reload_in_progress", str(exc)) from exc
    except IndexUnavailableError as exc:
        still = f"; still serving {before}" if before else ""
        raise ApiError(503, "reload_failed", f"{exc}{still}") from exc
    return ReloadResponse(
        status=result.status, previous_version=result.previous_version, index_version=result.index_version
    )


@router.get(
    "/index",
    response_model=IndexDetails,
    summary="The index being served with its manifest summary: documents, library versions, content hash",
)
def index_info_details(pipeline: Pipeline = Depends(get_pipeline)) -> IndexDetails:
    return index_details(pipeline)

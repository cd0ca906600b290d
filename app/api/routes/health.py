from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.api.errors import ApiError

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    index_version: str | None = None


@router.get("/healthz", response_model=Health, summary="Liveness: the process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: an index is loaded and queries can be answered",
    responses={503: {"description": "Not ready; the error message says why"}},
)
def readyz(request: Request) -> Health:
    holder = request.app.state.holder
    pipeline = holder.current
    if pipeline is None:
        raise ApiError(503, "index_not_ready", holder.not_ready_reason or "the index is still loading")
    return Health(status="ready", index_version=pipeline.index_version)

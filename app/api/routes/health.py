from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.errors import ApiError

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    index_version: str | None = None


class Readiness(Health):
    degraded: dict[str, str] = Field(
        default_factory=dict,
        description="Optional stages that could not be loaded at start-up (stage: reason): the service answers "
        "without them, and every response lists them in `stages`.",
    )


@router.get("/healthz", response_model=Health, summary="Liveness: the process is up")
async def healthz() -> Health:  # async: on the event loop, never queued behind pipeline work for a thread
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: an index is loaded and queries can be answered",
    responses={503: {"description": "Not ready; the error message says why"}},
)
async def readyz(request: Request) -> Readiness:  # async, as healthz: answers at once however busy the threads are
    holder = request.app.state.holder
    pipeline = holder.current
    if pipeline is None:
        raise ApiError(503, "index_not_ready", holder.not_ready_reason or "the index is still loading")
    return Readiness(status="ready", index_version=pipeline.index_version, degraded=pipeline.unavailable)

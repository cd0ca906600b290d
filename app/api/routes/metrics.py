"""`GET /metrics`: Prometheus exposition of the app's own registry (see `app.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.metrics import Metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # async: rendering is cheap, and a scrape must not queue behind pipeline requests in the thread pool
    registry: Metrics = request.app.state.metrics
    body, content_type = registry.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)

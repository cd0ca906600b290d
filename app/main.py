"""`create_app(settings)`: the FastAPI application. Heavy loading happens once, in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from app.api.errors import install_error_handlers
from app.api.middleware import RequestContextMiddleware
from app.api.routes import ask, health, index, ui
from app.config import Settings
from app.pipeline.runner import Pipeline
from indexer.dense import EncoderLoadError
from indexer.store import IndexUnavailableError

log = logging.getLogger(__name__)


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app; pass `pipeline` to reuse one already loaded (tests), else it loads at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.pipeline is None:
            try:
                app.state.pipeline = await run_in_threadpool(Pipeline.load, settings)
                app.state.not_ready_reason = None
            except (IndexUnavailableError, EncoderLoadError) as exc:
                app.state.not_ready_reason = str(exc)
                log.error("not ready", extra={"reason": str(exc)})
        yield

    app = FastAPI(
        title="clinqa",
        version="0.1.0",
        summary="Clinical question answering with verified citations (demonstration only, not for clinical use).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.not_ready_reason = None if pipeline else "the index is still loading"
    install_error_handlers(app)
    for router in (health.router, ask.router, index.router, ui.router):
        app.include_router(router)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-request-id"],
            expose_headers=["x-request-id"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.api.max_body_bytes)
    return app

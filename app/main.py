"""`create_app(settings)`: the FastAPI application. Heavy loading happens once, in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from app.api.auth import ApiKeyAuthenticator, route_access
from app.api.errors import install_error_handlers
from app.api.middleware import RequestContextMiddleware
from app.api.routes import admin, ask, concepts, health, index, metrics, ui
from app.audit import AuditLog
from app.config import Settings
from app.metrics import Metrics
from app.pipeline.runner import Pipeline
from app.serving import PipelineHolder

log = logging.getLogger(__name__)


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the app; pass `pipeline` to reuse one already loaded (tests), else it loads at start-up."""

    holder = PipelineHolder(settings, pipeline)
    auth = ApiKeyAuthenticator.from_settings(settings.auth)  # KeyFileError: a bad keys file stops start-up
    audit = AuditLog.from_settings(settings.audit)  # None unless audit.path is set

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if holder.current is None:
            await run_in_threadpool(holder.load)
        yield
        if audit is not None:
            audit.close()

    app = FastAPI(
        title="clinqa",
        version="0.1.0",
        summary="Clinical question answering with verified citations (demonstration only, not for clinical use).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.metrics = Metrics(holder)
    app.state.audit = audit
    app.state.auth = auth
    install_error_handlers(app)
    for router in (health.router, ask.router, concepts.router, index.router, admin.router, ui.router, metrics.router):
        app.include_router(router, **route_access(router.prefix))
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            # x-api-key: the widget's `api-key` attribute sends it
            allow_headers=["content-type", "x-request-id", "x-api-key", "authorization"],
            expose_headers=["x-request-id"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.api.max_body_bytes, metrics=app.state.metrics)
    return app

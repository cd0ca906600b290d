"""Dependencies shared by the routes: settings, the loaded pipeline, the request id."""

from __future__ import annotations

from fastapi import Request

from app.api.errors import ApiError, request_id_of
from app.config import Settings
from app.pipeline.runner import Pipeline


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline | None = request.app.state.pipeline
    if pipeline is None:
        reason = request.app.state.not_ready_reason or "the index is still loading"
        raise ApiError(503, "index_not_ready", reason)
    return pipeline


def get_request_id(request: Request) -> str:
    return request_id_of(request)

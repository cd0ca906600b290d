"""Dependencies shared by the routes: settings, the loaded pipeline, the request id."""

from __future__ import annotations

from fastapi import Request

from app.api.errors import ApiError, request_id_of
from app.config import Settings
from app.pipeline.runner import Pipeline
from app.serving import PipelineHolder


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_holder(request: Request) -> PipelineHolder:
    return request.app.state.holder


def get_pipeline(request: Request) -> Pipeline:
    """The pipeline this request runs on from start to end, even if a reload swaps in another."""
    holder: PipelineHolder = request.app.state.holder
    pipeline = holder.current
    if pipeline is None:
        raise ApiError(503, "index_not_ready", holder.not_ready_reason or "the index is still loading")
    return pipeline


def get_request_id(request: Request) -> str:
    return request_id_of(request)

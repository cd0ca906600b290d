from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import get_pipeline, get_request_id, get_settings
from app.api.errors import ApiError, ErrorBody
from app.api.schemas import (
    AskRequest,
    AskResponse,
    SearchRequest,
    SearchResponse,
    ask_response,
    search_response,
)
from app.config import Settings
from app.pipeline.runner import Pipeline

router = APIRouter(prefix="/v1", tags=["answers"])
_ERRORS = {
    413: {"model": ErrorBody, "description": "Request body too large"},
    422: {"model": ErrorBody, "description": "Invalid request; `error.field` names the field"},
    503: {"model": ErrorBody, "description": "No index loaded"},
}


def _check_length(value: str, field: str, settings: Settings) -> None:
    limit = settings.api.max_question_chars
    if len(value) > limit:
        raise ApiError(422, "validation_error", f"{field}: longer than {limit} characters ({len(value)})", field)


@router.post(
    "/ask",
    response_model=AskResponse,
    responses=_ERRORS,
    summary="Answer a clinical question with verified citations, or abstain",
)
def ask(
    body: AskRequest,
    pipeline: Pipeline = Depends(get_pipeline),
    settings: Settings = Depends(get_settings),
    request_id: str = Depends(get_request_id),
) -> AskResponse:
    _check_length(body.question, "question", settings)
    outcome = pipeline.ask(body.question)
    return ask_response(outcome, request_id, pipeline.index.documents)


@router.post("/search", response_model=SearchResponse, responses=_ERRORS, summary="Hybrid search over the index")
def search(
    body: SearchRequest,
    pipeline: Pipeline = Depends(get_pipeline),
    settings: Settings = Depends(get_settings),
    request_id: str = Depends(get_request_id),
) -> SearchResponse:
    _check_length(body.query, "query", settings)
    if body.top_k > settings.api.max_top_k:
        raise ApiError(422, "validation_error", f"top_k: must be <= {settings.api.max_top_k}", "top_k")
    outcome = pipeline.search(body.query, top_k=body.top_k)
    return search_response(outcome, request_id, pipeline.index.documents)

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from app.api.deps import get_pipeline, get_request_id, get_settings
from app.api.errors import ApiError, ErrorBody, ErrorDetail, stage_error
from app.api.schemas import (
    AskRequest,
    AskResponse,
    SearchRequest,
    SearchResponse,
    ask_response,
    search_response,
    source_of,
)
from app.audit import AuditLog
from app.config import Settings
from app.logs import question_fingerprint
from app.metrics import Metrics
from app.pipeline.runner import AskOutcome, DoneEvent, Pipeline, QueryEvent, SentenceEvent, SourcesEvent, StageError

log = logging.getLogger("clinqa.api")
router = APIRouter(prefix="/v1", tags=["answers"])
_ERRORS = {
    400: {"model": ErrorBody, "description": "The body could not be parsed (e.g. not UTF-8 JSON)"},
    413: {"model": ErrorBody, "description": "Request body too large"},
    422: {"model": ErrorBody, "description": "Invalid request; `error.field` names the field"},
    503: {"model": ErrorBody, "description": "No index loaded"},
}


def _check_length(value: str, field: str, settings: Settings) -> None:
    limit = settings.api.max_question_chars
    if len(value) > limit:
        raise ApiError(422, "validation_error", f"{field}: longer than {limit} characters ({len(value)})", field)


def _audit(request: Request) -> AuditLog | None:
    return getattr(request.app.state, "audit", None)


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # create_app always sets it


def _answered(request: Request, endpoint: str, question: str, outcome: AskOutcome) -> None:
    """One log line per question (its fingerprint, never its text), the metrics, and the audit record."""
    log.info(
        "question answered",
        extra={
            "request_id": getattr(request.state, "request_id", "-"),
            "endpoint": endpoint,
            **question_fingerprint(question),
            "status": outcome.answer.status,
            "verified": outcome.answer.verified,
            "index_version": outcome.index_version,
            "total_ms": outcome.timings_ms.get("total"),
        },
    )
    _metrics(request).observe_stages(outcome.timings_ms)
    _metrics(request).observe_answer(outcome.answer)
    if (audit := _audit(request)) is not None:
        audit.record_ask(request, endpoint, question, outcome)


def _failed(request: Request, endpoint: str, question: str, pipeline: Pipeline) -> None:
    # the error itself is logged (and counted) where it becomes a response: app.api.errors
    if (audit := _audit(request)) is not None:
        audit.record_error(request, endpoint, question, pipeline.index_version)


@router.post(
    "/ask",
    response_model=AskResponse,
    responses=_ERRORS,
    summary="Answer a clinical question with verified citations, or abstain",
)
def ask(
    body: AskRequest,
    request: Request,
    pipeline: Pipeline = Depends(get_pipeline),
    settings: Settings = Depends(get_settings),
    request_id: str = Depends(get_request_id),
) -> AskResponse:
    _check_length(body.question, "question", settings)
    try:
        outcome = pipeline.ask(body.question)
    except StageError:
        _failed(request, "/v1/ask", body.question, pipeline)
        raise
    _answered(request, "/v1/ask", body.question, outcome)
    return ask_response(outcome, request_id, pipeline.index.documents)


_STREAM_DOC = """Server-sent events, in this order:

- `query`: `{"request_id", "query"}`, the rewritten question and its concepts;
- `sources`: `{"sources", "evidence_check"}`, the evidence, best first;
- `sentence` (zero or more): `{"sentence", "citations"}`, each answer sentence as soon as it is verified, with
  the citations it is the first to use (unsupported sentences are not sent when `verify.policy` is `remove`);
- `done`: the same body as `POST /v1/ask` (status, verified, timings, index version, ...);
- `error` instead of the rest if a stage fails after the stream began: the usual error body plus `status`.

If the language model fails mid-answer (with the default `generate.fallback="extractive"`), the sentences
already sent stand and extractive sentences follow; `done.stages` says so. The `sentence` events are always
exactly the `done` answer's sentences, in order.

Invalid requests are answered before the stream starts, with the usual JSON error and status code."""


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _ask_stream(request: Request, pipeline: Pipeline, question: str, request_id: str) -> Iterator[str]:
    documents = pipeline.index.documents
    try:
        for event in pipeline.ask_events(question):
            if isinstance(event, QueryEvent):
                yield _event("query", {"request_id": request_id, "query": event.query.model_dump(mode="json")})
            elif isinstance(event, SourcesEvent):
                sources = [source_of(s, documents).model_dump(mode="json") for s in event.evidence]
                check = event.evidence_check.model_dump(mode="json")
                yield _event("sources", {"sources": sources, "evidence_check": check})
            elif isinstance(event, SentenceEvent):
                citations = [c.model_dump(mode="json") for c in event.citations]
                yield _event("sentence", {"sentence": event.sentence.model_dump(mode="json"), "citations": citations})
            elif isinstance(event, DoneEvent):
                _answered(request, "/v1/ask/stream", question, event.outcome)
                yield _event("done", ask_response(event.outcome, request_id, documents).model_dump(mode="json"))
    except StageError as exc:
        status, code, message = stage_error(exc, request_id)
        _failed(request, "/v1/ask/stream", question, pipeline)
        _metrics(request).count_error(code)
        body = ErrorBody(error=ErrorDetail(code=code, message=message), request_id=request_id)
        yield _event("error", {"status": status, **body.model_dump()})


@router.post(
    "/ask/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}, **_ERRORS},
    summary="The same answer as /v1/ask, streamed as server-sent events",
    description=_STREAM_DOC,
)
def ask_stream(
    body: AskRequest,
    request: Request,
    pipeline: Pipeline = Depends(get_pipeline),
    settings: Settings = Depends(get_settings),
    request_id: str = Depends(get_request_id),
) -> StreamingResponse:
    _check_length(body.question, "question", settings)
    return StreamingResponse(
        _ask_stream(request, pipeline, body.question, request_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Request-ID": request_id},
    )


@router.post("/search", response_model=SearchResponse, responses=_ERRORS, summary="Hybrid search over the index")
def search(
    body: SearchRequest,
    request: Request,
    pipeline: Pipeline = Depends(get_pipeline),
    settings: Settings = Depends(get_settings),
    request_id: str = Depends(get_request_id),
) -> SearchResponse:
    _check_length(body.query, "query", settings)
    if body.top_k > settings.api.max_top_k:
        raise ApiError(422, "validation_error", f"top_k: must be <= {settings.api.max_top_k}", "top_k")
    try:
        outcome = pipeline.search(body.query, top_k=body.top_k)
    except StageError:
        _failed(request, "/v1/search", body.query, pipeline)
        raise
    log.info(
        "search",
        extra={
            "request_id": request_id,
            "endpoint": "/v1/search",
            **question_fingerprint(body.query),
            "results": len(outcome.results),
            "index_version": outcome.index_version,
            "total_ms": outcome.timings_ms.get("total"),
        },
    )
    _metrics(request).observe_stages(outcome.timings_ms)
    if (audit := _audit(request)) is not None:
        audit.record_search(request, body.query, outcome, pipeline.index.documents)
    return search_response(outcome, request_id, pipeline.index.documents)

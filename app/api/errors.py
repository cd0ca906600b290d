"""The only place exceptions become HTTP status codes; every error has the same body shape:

{"error": {"code": ..., "message": ..., "field": ...}, "request_id": ...}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.pipeline.generate import GenerationError
from app.pipeline.runner import StageError
from indexer.store import IndexUnavailableError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail
    request_id: str


class ApiError(Exception):
    """Raised by routes and dependencies for a known, client-visible failure."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        # e.g. WWW-Authenticate on 401, Retry-After on 429
        self.headers = headers or {}


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field), request_id=request_id_of(request))
    request.app.state.metrics.count_error(code)  # clinqa_errors_total{code}: every error response
    return JSONResponse(
        status_code=status, content=body.model_dump(), headers={**(headers or {}), "X-Request-ID": body.request_id}
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    409: "conflict",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _field_of(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _validation_message(err: dict) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "json_invalid":
        return "request body is not valid JSON"
    if kind == "missing":
        return "field required"
    return str(err.get("msg", "invalid value"))


def stage_error(exc: StageError, request_id: str) -> tuple[int, str, str]:
    """Status, code and message for a failed stage (logged here): 502 when the language model failed (reached
    only with generate.fallback="error"; by default the pipeline answers extractively instead)."""
    log.error("pipeline stage failed", exc_info=exc, extra={"stage": exc.stage, "request_id": request_id})
    if isinstance(exc.__cause__, GenerationError):
        return 502, "upstream_model_error", str(exc.__cause__)
    return 500, "internal_error", f"the {exc.stage} stage failed; see server logs"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = _field_of(tuple(first.get("loc", ())))
        message = _validation_message(first)
        if field:
            message = f"{field}: {message}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error_response(request, 422, "validation_error", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(IndexUnavailableError)
    async def _index(request: Request, exc: IndexUnavailableError) -> JSONResponse:
        return error_response(request, 503, "index_not_ready", str(exc))

    @app.exception_handler(StageError)
    async def _stage(request: Request, exc: StageError) -> JSONResponse:
        return error_response(request, *stage_error(exc, request_id_of(request)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc, extra={"request_id": request_id_of(request)})
        return error_response(request, 500, "internal_error", "internal error; see server logs")

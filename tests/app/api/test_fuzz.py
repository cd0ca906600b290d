"""Fuzzing the API from its own OpenAPI schema (schemathesis) over a real socket: no 5xx, ever, and every 4xx
in the one error body shape.

Each operation the app declares gets its own test: schemathesis generates requests that fit the schema
(positive) and requests that break it (negative) from the live server's /openapi.json. Examples are bounded
and derandomized, so every run sends the same requests. (Schemathesis's own `from_fixture(...).parametrize()`
is not used: with pytest 9.2 it fails on a removed pytest internal, `Node._nodeid`.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests.helpers import uvicorn_thread

pytestmark = [pytest.mark.unit, pytest.mark.slow]

# Per operation and generation mode. /v1/ask and /v1/ask/stream run the whole pipeline on each valid request,
# which on the tiny index takes tens of milliseconds: the module sends ~800 requests in ~20 s on 2 CPUs.
EXAMPLES = 50
# Server-sent events are documented without a schema: no response-schema validation of their 200 body.
NO_SCHEMA_VALIDATION = {"/v1/ask/stream"}


def _cases() -> list[tuple[GenerationMode, str, str]]:
    """(mode, method, path) for every operation the app declares: valid requests for each, and invalid ones for
    those that take any input. Building the app loads nothing (that happens at start-up)."""
    paths = create_app(Settings()).openapi()["paths"]
    cases = []
    for path, item in sorted(paths.items()):
        for method, operation in sorted(item.items()):
            cases.append((GenerationMode.POSITIVE, method.upper(), path))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((GenerationMode.NEGATIVE, method.upper(), path))
    return cases


@pytest.fixture(scope="module")
def live_url(tiny_settings, tiny_pipeline):
    with uvicorn_thread(create_app(tiny_settings, pipeline=tiny_pipeline)) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(live_url):
    return schemathesis.openapi.from_url(f"{live_url}/openapi.json")


def standard_error_body(ctx, response, case) -> None:
    """A 4xx answers with `{"error": {"code", "message", "field"}, "request_id"}` and an `X-Request-ID` header."""
    if not 400 <= response.status_code < 500:
        return
    body = response.json()
    assert set(body) == {"error", "request_id"}, f"error body keys: {sorted(body)}"
    error = body["error"]
    assert set(error) == {"code", "message", "field"}, f"error keys: {sorted(error)}"
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert error["field"] is None or isinstance(error["field"], str), body
    assert isinstance(body["request_id"], str) and body["request_id"], body
    assert response.headers.get("x-request-id") == [body["request_id"]], response.headers


@pytest.mark.parametrize(
    ("mode", "method", "path"), _cases(), ids=lambda v: v.value if isinstance(v, GenerationMode) else v
)
def test_fuzz_operation_never_answers_5xx(api_schema, live_url, mode, method, path):
    operation = api_schema[path][method]
    checks = [not_a_server_error, standard_error_body, status_code_conformance, content_type_conformance]
    if path not in NO_SCHEMA_VALIDATION:
        checks.append(response_schema_conformance)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,  # nothing replayed from an earlier run's .hypothesis/: the same requests every time
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        response = case.call(base_url=live_url, timeout=60)
        case.validate_response(response, checks=checks)

    run()

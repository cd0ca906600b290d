"""GET /metrics over a real socket: request and stage histograms, answers, errors by code, the served index
version; label values are route templates and codes, never request content."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import IndexSettings, Settings
from app.main import create_app
from tests.helpers import uvicorn_thread

pytestmark = pytest.mark.unit

QUESTION = "how long is prednisolone given for an asthma attack"


def scrape(get) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of one scrape."""
    response = get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_with_requests_and_never_carry_question_text(tiny_settings, tiny_pipeline):
    with uvicorn_thread(create_app(tiny_settings, pipeline=tiny_pipeline)) as url, httpx.Client(base_url=url) as c:
        before = scrape(c.get)
        assert c.post("/v1/ask", json={"question": QUESTION}, timeout=60).json()["status"] == "answered"
        assert c.post("/v1/search", json={"query": QUESTION, "top_k": 3}, timeout=60).status_code == 200
        with c.stream("POST", "/v1/ask/stream", json={"question": QUESTION}, timeout=60) as r:
            assert r.status_code == 200 and "event: done" in r.read().decode()
        assert c.post("/v1/ask", json={"question": QUESTION, "colour": "red"}).status_code == 422
        assert c.get(f"/v1/{QUESTION.replace(' ', '-')}", params={"q": QUESTION}).status_code == 404
        assert c.post("/v1/ask", content=b"x" * 2_000_000).status_code == 413
        after = scrape(c.get)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "clinqa_request_duration_seconds_count"
    assert moved(requests, method="POST", route="/v1/ask", status="200") == 1
    assert moved(requests, method="POST", route="/v1/ask/stream", status="200") == 1
    assert moved(requests, method="POST", route="/v1/search", status="200") == 1
    assert moved(requests, method="POST", route="/v1/ask", status="422") == 1
    assert moved(requests, method="GET", route="unmatched", status="404") == 1
    assert moved(requests, method="POST", route="unmatched", status="413") == 1  # refused before routing
    assert moved("clinqa_request_duration_seconds_sum", method="POST", route="/v1/ask", status="200") > 0
    for stage in ("rewrite", "retrieve", "fuse", "gate", "generate", "verify"):
        assert moved("clinqa_stage_duration_seconds_count", stage=stage) >= 2, stage
    assert moved("clinqa_stage_duration_seconds_count", stage="total") == 3  # ask, stream, search
    answered = moved("clinqa_answers_total", status="answered", verified="true") + moved(
        "clinqa_answers_total", status="answered", verified="false"
    )
    assert answered == 2
    for code in ("validation_error", "not_found", "payload_too_large"):
        assert moved("clinqa_errors_total", code=code) == 1, code
    assert value(after, "clinqa_index_info", version=tiny_pipeline.index_version) == 1
    assert value(after, "clinqa_ready") == 1
    words = {w for w in QUESTION.split() if len(w) > 3}
    labels = {v for _, labelset in after for _, v in labelset}
    assert not {v for v in labels if any(w in v for w in words)}, labels


def test_not_ready_app_reports_no_index_and_apps_have_their_own_registries(tmp_path):
    settings = Settings(index=IndexSettings(root=tmp_path / "empty"))
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        assert one.get("/readyz").status_code == 503
        samples = scrape(one.get)
        assert value(samples, "clinqa_ready") == 0
        assert not [key for key in samples if key[0] == "clinqa_index_info"]
        assert value(samples, "clinqa_errors_total", code="index_not_ready") == 1
        assert value(scrape(two.get), "clinqa_errors_total", code="index_not_ready") == 0

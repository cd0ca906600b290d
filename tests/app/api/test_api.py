"""The HTTP API: in-process ASGI client for the error matrix, and a real socket for the happy path."""

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import IndexSettings, Settings
from app.main import create_app
from tests.helpers import uvicorn_thread

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client(tiny_settings, tiny_pipeline):
    with TestClient(create_app(tiny_settings, pipeline=tiny_pipeline)) as c:
        yield c


def assert_error(response, status: int, code: str, field: str | None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code and body["error"]["field"] == field
    assert body["error"]["message"]
    assert response.headers["x-request-id"] == body["request_id"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 100_000}, "question"),
        ({"question": 42}, "question"),
        ({"question": "gout", "colour": "red"}, "colour"),
        ({}, "question"),
    ],
)
def test_bad_ask_input_is_422_naming_the_field(client, payload, field):
    assert_error(client.post("/v1/ask", json=payload), 422, "validation_error", field)


def test_malformed_json_and_oversized_body(client):
    r = client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert_error(client.post("/v1/ask", content=b"x" * 2_000_000), 413, "payload_too_large", None)


def test_search_bounds_and_unknown_route(client):
    assert_error(client.post("/v1/search", json={"query": "gout", "top_k": 0}), 422, "validation_error", "top_k")
    assert_error(client.post("/v1/search", json={"query": "gout", "top_k": 51}), 422, "validation_error", "top_k")
    assert_error(client.get("/v1/nope"), 404, "not_found", None)
    assert_error(client.get("/v1/ask"), 405, "method_not_allowed", None)


def test_request_id_is_echoed_or_generated(client):
    r = client.post("/v1/search", json={"query": "gout flare"}, headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123" and r.json()["request_id"] == "abc-123"
    r = client.post("/v1/search", json={"query": "gout flare"}, headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32


def test_search_health_index_and_docs(client, tiny_pipeline):
    r = client.post("/v1/search", json={"query": "colchicine for a gout flare", "top_k": 2})
    body = r.json()
    assert r.status_code == 200 and len(body["results"]) == 2
    assert body["results"][0]["breadcrumb"] == "Gout > Acute flare"
    assert body["index_version"] == tiny_pipeline.index_version and "total" in body["timings_ms"]
    assert client.get("/healthz").json() == {"status": "ok", "index_version": None}
    assert client.get("/readyz").json()["index_version"] == tiny_pipeline.index_version
    info = client.get("/v1/index").json()
    assert info["version"] == tiny_pipeline.index_version and info["counts"]["documents"] == 3
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    assert "<clinqa-answer" in client.get("/").text


def test_not_ready_without_an_index(tmp_path):
    settings = Settings(index=IndexSettings(root=tmp_path / "empty"))
    with TestClient(create_app(settings)) as c:
        assert_error(c.get("/readyz"), 503, "index_not_ready", None)
        assert "clinqa index build" in c.get("/readyz").json()["error"]["message"]
        assert_error(c.post("/v1/ask", json={"question": "gout"}), 503, "index_not_ready", None)
        assert c.get("/healthz").status_code == 200


def test_real_socket_ask_then_bad_input_then_ask_again(tiny_settings, tiny_pipeline):
    with uvicorn_thread(create_app(tiny_settings, pipeline=tiny_pipeline)) as url:
        r = httpx.post(
            f"{url}/v1/ask", json={"question": "how long is prednisolone given for an asthma attack"}, timeout=60
        )
        body = r.json()
        assert r.status_code == 200 and body["status"] == "answered"
        assert any("5 days" in s["text"] for s in body["sentences"])
        for c in body["citations"]:
            assert c["chunk_text"][c["start"] : c["end"]] == c["quote"]
        bad = httpx.post(f"{url}/v1/ask", json={"question": ["not", "a", "string"]}, timeout=10)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "question"
        again = httpx.post(f"{url}/v1/ask", json={"question": "best treatment for a broken tibia in a dog"}, timeout=60)
        assert again.status_code == 200 and again.json()["status"] == "abstained" and again.json()["reason"]

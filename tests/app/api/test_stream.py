"""POST /v1/ask/stream: server-sent events over a real socket, in order, with the first sentence before done."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.main import create_app
from tests.helpers import uvicorn_thread

pytestmark = pytest.mark.unit

QUESTION = "What is the target serum urate on allopurinol?"


@pytest.fixture(scope="module")
def server(tiny_settings, tiny_pipeline):
    with uvicorn_thread(create_app(tiny_settings, pipeline=tiny_pipeline)) as url:
        yield url


def read_events(response: httpx.Response) -> list[tuple[str, dict, float]]:
    """(event name, data, arrival time) for each server-sent event, parsed as the bytes arrive."""
    events: list[tuple[str, dict, float]] = []
    name, data = None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and name is not None:
            events.append((name, json.loads("\n".join(data)), time.perf_counter()))
            name, data = None, []
    return events


def test_stream_sends_query_sources_sentences_then_done(server):
    with httpx.stream("POST", f"{server}/v1/ask/stream", json={"question": QUESTION}, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        request_id = r.headers["x-request-id"]
        events = read_events(r)
    names = [name for name, _, _ in events]
    assert names[:2] == ["query", "sources"] and names[-1] == "done"
    assert set(names[2:-1]) == {"sentence"}, names
    query, sources, *sentences, done = (data for _, data, _ in events)
    assert query["request_id"] == request_id and query["query"]["original"] == QUESTION
    assert sources["sources"] and sources["evidence_check"]["sufficient"]
    # the first sentence arrives before done, and the streamed sentences are the final answer's
    assert events[2][2] <= events[-1][2]
    assert [s["sentence"] for s in sentences] == done["sentences"]
    streamed_citations = [c for s in sentences for c in s["citations"]]
    assert streamed_citations == done["citations"]
    assert done["status"] == "answered" and done["request_id"] == request_id
    assert done["generation"]["backend"] == "extractive" and done["index_version"]
    assert {"generate", "verify", "total"} <= set(done["timings_ms"])


def test_stream_answer_matches_the_plain_endpoint(server):
    plain = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=60).json()
    with httpx.stream("POST", f"{server}/v1/ask/stream", json={"question": QUESTION}, timeout=60) as r:
        done = read_events(r)[-1][1]
    for key in ("status", "verified", "answer", "sentences", "citations", "index_version"):
        assert done[key] == plain[key], key


def test_stream_abstains_with_closest_sources(server):
    with httpx.stream("POST", f"{server}/v1/ask/stream", json={"question": "best splint for a dog's tibia"}) as r:
        events = read_events(r)
    assert [name for name, _, _ in events] == ["query", "sources", "done"]
    assert events[-1][1]["status"] == "abstained" and events[-1][1]["reason"]


def test_stream_rejects_bad_input_before_streaming(server):
    r = httpx.post(f"{server}/v1/ask/stream", json={"question": ""})
    assert r.status_code == 422 and r.json()["error"]["field"] == "question"
    assert r.headers["content-type"].startswith("application/json")

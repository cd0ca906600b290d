"""The whole pipeline with the llama.cpp generator on a random-weight GGUF the tests write: whatever the
model writes parses, cites only the evidence, and is caught by the verifier, so the answer abstains or is
marked unverified; it is never presented as verified."""

from __future__ import annotations

import json

import httpx
import pytest

from app.config import GenerateSettings, Settings, VerifySettings
from app.main import create_app
from app.pipeline.runner import Pipeline
from tests.helpers import uvicorn_thread
from tests.tiny_gguf import import_llama_cpp_quietly, write_tiny_gguf

import_llama_cpp_quietly()

pytestmark = pytest.mark.unit

QUESTIONS = [
    "What is the target serum urate on allopurinol?",
    "first line treatment for hypertension in adults",
    "How is hypertension confirmed?",
    "What is the maintenance treatment for asthma?",
    "colchicine dose for a gout flare",
    "Is ramipril given once daily?",
]


def llm_settings(base: Settings, gguf, policy: str) -> Settings:
    generate = GenerateSettings(
        backend="llama_cpp", model=str(gguf), threads=1, context_tokens=4096, max_tokens=600, max_sentences=3
    )
    return base.model_copy(update={"generate": generate, "verify": VerifySettings(policy=policy)})


@pytest.fixture(scope="module")
def gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module", params=["remove", "flag"])
def llm_pipeline(request, tiny_settings, gguf) -> Pipeline:
    return Pipeline.load(llm_settings(tiny_settings, gguf, request.param))


@pytest.mark.parametrize("question", QUESTIONS)
def test_random_model_answers_are_never_verified(llm_pipeline: Pipeline, question: str):
    outcome = llm_pipeline.ask(question)
    answer = outcome.answer
    assert not answer.verified
    assert outcome.generation.backend == "llama_cpp"
    if outcome.evidence_check.sufficient:  # else the gate abstained and no model ran
        assert outcome.generation.prompt == "answer.v2"
    evidence_ids = {c.chunk.id for c in outcome.evidence}
    assert {c.chunk_id for c in answer.citations} <= evidence_ids
    if llm_pipeline.settings.verify.policy == "remove":
        # every meaningless sentence is removed, so nothing is left to answer with
        assert answer.status == "abstained" and answer.reason, answer
    else:
        assert all(s.support != "supported" for s in answer.sentences)
        if answer.status == "answered":
            assert "not fully supported" in answer.reason
    if outcome.generation.dropped_evidence:
        assert any(n.stage == "generate" and n.status == "degraded" for n in outcome.notes)
    assert {"generate", "verify", "total"} <= set(outcome.timings_ms) or answer.status == "abstained"


def test_stream_over_a_real_socket_with_the_llm(tiny_settings, gguf):
    settings = llm_settings(tiny_settings, gguf, "flag")
    with uvicorn_thread(create_app(settings)) as url:  # loads the pipeline, model included, at start-up
        assert httpx.get(f"{url}/readyz").status_code == 200
        with httpx.stream("POST", f"{url}/v1/ask/stream", json={"question": QUESTIONS[0]}, timeout=120) as r:
            assert r.status_code == 200
            events = [
                (
                    block.split("\n")[0].removeprefix("event: "),
                    json.loads(block.split("\n", 1)[1].removeprefix("data: ")),
                )
                for block in r.read().decode().strip().split("\n\n")
            ]
    names = [name for name, _ in events]
    assert names[:2] == ["query", "sources"] and names[-1] == "done"
    done = events[-1][1]
    assert done["generation"]["backend"] == "llama_cpp" and not done["verified"]
    assert [data["sentence"] for name, data in events if name == "sentence"] == done["sentences"]

"""Faults while serving, over a real socket with real models: the documented degraded behaviour, and
nothing lost.

- the cross-encoder's directory deleted while serving: the loaded model keeps reranking, reloads too;
  a fresh start without it answers with the fused order and says so (or is not ready with rerank.required);
- the cross-encoder past rerank.timeout_s: the fused order, and a note saying it timed out;
- the language model's server refused, or killed mid-answer; llama.cpp past generate.timeout_s: the
  extractive generator answers from the same evidence (sentences already streamed are kept), or 502 with
  generate.fallback=error;
- the index corrupt at start-up: the process is up (/healthz), not ready (/readyz 503 naming the file).
The corrupt version during a reload is tests/app/api/test_reload.py; the disk full while writing a version
is tests/indexer/test_disk_full.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.config import GenerateSettings, IndexSettings, RerankSettings, Settings, VerifySettings
from app.main import create_app
from app.pipeline.llm import load_llm_generator
from app.pipeline.rerank import CrossEncoderReranker
from app.pipeline.runner import Pipeline
from indexer.build import build_index
from indexer.store import activate, resolve_version
from tests.helpers import free_port, uvicorn_thread, write_tiny_bert
from tests.tiny_gguf import import_llama_cpp_quietly, llama_server, write_tiny_gguf

pytestmark = pytest.mark.unit

QUESTION = "What is the target serum urate on allopurinol?"  # answered from the tiny corpus


def copy_index(settings: Settings, root: Path) -> Settings:
    """`settings` over a private copy of its current index version (so tests may break or add versions)."""
    source = resolve_version(settings.index.root)
    shutil.copytree(source, root / source.name)
    activate(root, source.name)
    return settings.model_copy(update={"index": IndexSettings(root=root)})


def ask(url: str, question: str = QUESTION) -> dict:
    r = httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def notes(body: dict, stage: str) -> list[dict]:
    return [n for n in body["stages"] if n["stage"] == stage]


def reranked(body: dict) -> bool:
    return not notes(body, "rerank") and all("rerank" in s["scores"] for s in body["sources"])


def sse(response: httpx.Response, on_event: Callable[[str, dict], None] | None = None) -> list[tuple[str, dict]]:
    """The server-sent events as they arrive; `on_event` sees each one before the next is read."""
    events: list[tuple[str, dict]] = []
    name, data = None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and name is not None:
            events.append((name, json.loads("\n".join(data))))
            if on_event:
                on_event(*events[-1])
            name, data = None, []
    return events


# --- the cross-encoder ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cross_encoder_settings(tiny_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("faults-rerank")
    model = write_tiny_bert(tmp / "cross-encoder", num_labels=1)
    settings = copy_index(tiny_settings, tmp / "indexes")
    return settings.model_copy(update={"rerank": RerankSettings(model=str(model), max_length=128)})


def test_reranker_directory_deleted_while_serving_then_reload_then_fresh_start(cross_encoder_settings: Settings):
    settings = cross_encoder_settings
    model_dir = Path(settings.rerank.model or "")
    with uvicorn_thread(create_app(settings)) as url:  # the real start-up: index, encoder, cross-encoder
        assert httpx.get(f"{url}/readyz").json()["degraded"] == {}
        before = ask(url)
        assert reranked(before) and before["status"] == "answered"

        shutil.rmtree(model_dir)  # the model is in memory: answers keep coming, reranked
        after = ask(url)
        assert reranked(after)
        assert [s["chunk_id"] for s in after["sources"]] == [s["chunk_id"] for s in before["sources"]]

        new_version = build_index(settings).version  # a reload shares the loaded models
        r = httpx.post(f"{url}/v1/admin/reload", timeout=120)
        assert r.status_code == 200 and r.json()["index_version"] == new_version, r.text
        reloaded = ask(url)
        assert reranked(reloaded) and reloaded["index_version"] == new_version
        assert reloaded["answer"] == before["answer"]

    # A fresh start without the model: up and answering with the fused order, saying why everywhere.
    with uvicorn_thread(create_app(settings)) as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200, ready.text
        reason = ready.json()["degraded"]["rerank"]
        assert "could not be loaded at start-up" in reason and str(model_dir) in reason
        body = ask(url)
        assert body["status"] == "answered"
        assert notes(body, "rerank") == [{"stage": "rerank", "status": "degraded", "message": reason}]
        assert not any("rerank" in s["scores"] for s in body["sources"])
        search = httpx.post(f"{url}/v1/search", json={"query": "gout"}, timeout=60).json()
        assert notes(search, "rerank")[0]["status"] == "degraded"

    # rerank.required: the same start-up is not ready, and says why.
    required = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"required": True})})
    with uvicorn_thread(create_app(required)) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "index_not_ready"
        assert "cannot load cross-encoder" in r.json()["error"]["message"]
        assert httpx.post(f"{url}/v1/ask", json={"question": QUESTION}).status_code == 503


def test_reranker_timeout_keeps_the_fused_order(tiny_settings: Settings, tiny_pipeline: Pipeline, tmp_path: Path):
    model = write_tiny_bert(tmp_path / "cross-encoder", num_labels=1)
    # No real model scores ten pairs in a microsecond: every call is abandoned at the deadline.
    rerank = RerankSettings(model=str(model), timeout_s=1e-6)
    settings = tiny_settings.model_copy(update={"rerank": rerank})
    reranker = CrossEncoderReranker(rerank).load()
    pipeline = Pipeline(settings, tiny_pipeline.index, tiny_pipeline.encoder, reranker)
    with uvicorn_thread(create_app(settings, pipeline=pipeline)) as url:
        body = ask(url)
    plain = tiny_pipeline.ask(QUESTION)
    assert notes(body, "rerank") == [
        {"stage": "rerank", "status": "degraded", "message": "reranker timed out after 1e-06 s; fused order kept"}
    ]
    assert [s["chunk_id"] for s in body["sources"]] == [c.chunk.id for c in plain.evidence]
    assert body["answer"] == plain.answer.text and body["status"] == "answered"
    assert body["timings_ms"]["rerank"] < 1000


# --- the language model -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import_llama_cpp_quietly()  # skips the language-model tests when llama-cpp-python is missing
    return write_tiny_gguf(tmp_path_factory.mktemp("faults-gguf") / "tiny.gguf")


def openai_pipeline(base: Settings, tiny_pipeline: Pipeline, url: str, **generate: object) -> Pipeline:
    """The tiny index and encoder with the openai backend at `url` (random-weight answers, flagged not removed,
    so the model's sentences are shown)."""
    values: dict[str, object] = {
        "backend": "openai",
        "base_url": url,
        "model": "tiny",
        "context_tokens": 4096,
        "max_tokens": 1400,
        "max_sentences": 6,
        "retries": 0,
        "timeout_s": 30,
    }
    settings = base.model_copy(
        update={"generate": GenerateSettings(**(values | generate)), "verify": VerifySettings(policy="flag")}
    )
    llm = load_llm_generator(settings.generate, settings.privacy)
    return Pipeline(settings, tiny_pipeline.index, tiny_pipeline.encoder, None, llm)


def extractive_answer(pipeline: Pipeline) -> list[str]:
    """The answer the same settings give with the extractive generator."""
    extractive = Pipeline(pipeline.settings, pipeline.index, pipeline.encoder, None)
    return [s.text for s in extractive.ask(QUESTION).answer.sentences]


@pytest.mark.slow
def test_llm_server_killed_between_requests_falls_back_to_extractive(tiny_settings, tiny_pipeline, gguf):
    with llama_server(gguf, n_ctx=4096) as llm_server:
        pipeline = openai_pipeline(tiny_settings, tiny_pipeline, llm_server.url)
        with uvicorn_thread(create_app(tiny_settings, pipeline=pipeline)) as url:
            first = ask(url)
            assert first["generation"]["backend"] == "openai" and not notes(first, "generate")
            llm_server.proc.kill()
            llm_server.proc.wait()
            second = ask(url)
    assert second["generation"] == {
        "backend": "extractive",
        "model": None,
        "prompt": None,
        "dropped_evidence": [],
        "redacted": [],
    }
    [note] = notes(second, "generate")
    assert note["status"] == "degraded"
    assert note["message"].startswith("the openai backend failed (openai backend: ")
    assert "ConnectError" in note["message"] and note["message"].endswith("answered by the extractive generator")
    assert second["status"] == "answered" and second["verified"]
    assert [s["text"] for s in second["sentences"]] == extractive_answer(pipeline)
    assert second["sources"] == first["sources"]


@pytest.mark.slow
def test_llm_server_killed_mid_stream_keeps_what_was_sent_and_continues_extractive(tiny_settings, tiny_pipeline, gguf):
    """SIGKILL as soon as the first sentence reaches the client: the random model fills all six sentences
    (several seconds on one thread), so the kill lands mid-answer."""
    with llama_server(gguf, n_ctx=4096) as llm_server:
        pipeline = openai_pipeline(tiny_settings, tiny_pipeline, llm_server.url)

        def kill_on_first_sentence(name: str, data: dict) -> None:
            if name == "sentence" and llm_server.proc.poll() is None:
                llm_server.proc.kill()
                llm_server.proc.wait()

        with (
            uvicorn_thread(create_app(tiny_settings, pipeline=pipeline)) as url,
            httpx.stream("POST", f"{url}/v1/ask/stream", json={"question": QUESTION}, timeout=120) as r,
        ):
            assert r.status_code == 200
            events = sse(r, kill_on_first_sentence)
    names = [name for name, _ in events]
    assert names[:2] == ["query", "sources"] and names[-1] == "done" and "error" not in names
    done = events[-1][1]
    [note] = notes(done, "generate")
    assert note["message"].startswith("the openai backend failed (openai backend: the stream from")
    kept = int(note["message"].split("after the ")[1].split(" verified sentence(s)")[0])
    assert 1 <= kept < 6, note  # the model had written some, not all, of its sentences
    assert done["generation"]["backend"] == "extractive"
    # What the client saw is the answer: the model's sentences first, then the extractive ones, each once.
    streamed = [data["sentence"] for name, data in events if name == "sentence"]
    assert streamed == done["sentences"]
    texts = [s["text"] for s in done["sentences"]]
    extractive = extractive_answer(pipeline)
    assert texts[kept:] == [t for t in extractive if t not in texts[:kept]][: 6 - kept] and len(texts) > kept
    assert all(s["support"] != "supported" for s in done["sentences"][:kept])  # random text, flagged
    assert all(s["support"] == "supported" for s in done["sentences"][kept:])
    assert not done["verified"]
    numbers = [n for s in done["sentences"] for n in s["citations"]]
    assert sorted({c["number"] for c in done["citations"]}) == list(range(1, len(done["citations"]) + 1))
    assert set(numbers) == {c["number"] for c in done["citations"]}


def test_fallback_error_policy_answers_502(tiny_settings, tiny_pipeline):
    nobody = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    pipeline = openai_pipeline(tiny_settings, tiny_pipeline, nobody, fallback="error")
    with uvicorn_thread(create_app(tiny_settings, pipeline=pipeline)) as url:
        r = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60)
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert error["code"] == "upstream_model_error" and "ConnectError" in error["message"]
        with httpx.stream("POST", f"{url}/v1/ask/stream", json={"question": QUESTION}, timeout=60) as s:
            events = sse(s)
    assert [name for name, _ in events] == ["query", "sources", "error"]
    assert events[-1][1]["status"] == 502 and events[-1][1]["error"]["code"] == "upstream_model_error"


def test_llama_cpp_past_its_deadline_falls_back(tiny_settings, tiny_pipeline, gguf):
    generate = GenerateSettings(
        backend="llama_cpp", model=str(gguf), threads=1, context_tokens=4096, max_tokens=600, timeout_s=0.001
    )
    settings = tiny_settings.model_copy(update={"generate": generate})
    pipeline = Pipeline(
        settings, tiny_pipeline.index, tiny_pipeline.encoder, None, load_llm_generator(generate, settings.privacy)
    )
    with uvicorn_thread(create_app(settings, pipeline=pipeline)) as url:
        body = ask(url)
    [note] = notes(body, "generate")
    assert note["message"] == (
        "the llama_cpp backend failed (llama_cpp backend: timed out after 0.001 s (CLINQA_GENERATE__TIMEOUT_S)); "
        "answered by the extractive generator"
    )
    assert body["generation"]["backend"] == "extractive" and body["status"] == "answered"
    assert [s["text"] for s in body["sentences"]] == extractive_answer(pipeline)


# --- the index --------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "faiss truncated": (lambda v: _truncate(v / "dense.faiss"), "dense.faiss"),
    "faiss garbage": (lambda v: (v / "dense.faiss").write_bytes(b"\x00garbage" * 64), "dense.faiss"),
    "bm25 deleted": (lambda v: shutil.rmtree(v / "bm25"), "bm25/"),
    "manifest not json": (lambda v: (v / "manifest.json").write_text("{not json"), "manifest.json"),
    "chunks truncated": (lambda v: _truncate(v / "chunks.jsonl"), "chunks.jsonl"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_index_at_start_up_is_up_but_not_ready(tiny_settings: Settings, tmp_path: Path, corruption: str):
    settings = copy_index(tiny_settings, tmp_path / "indexes")
    corrupt, file_name = CORRUPTIONS[corruption]
    corrupt(resolve_version(settings.index.root))
    with uvicorn_thread(create_app(settings)) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "index_not_ready" and file_name in r.json()["error"]["message"]
        a = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=30)
        assert a.status_code == 503 and a.json()["error"]["code"] == "index_not_ready"
        assert file_name in a.json()["error"]["message"]

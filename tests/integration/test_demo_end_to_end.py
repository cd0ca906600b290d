"""The README path on the demo corpus: `clinqa index build`, `clinqa serve` on a free port, ask over HTTP."""

import os

import httpx
import pytest

from tests.helpers import REPO, clinqa, clinqa_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS = {
    "first line treatment for hypertension in adults": "hypertension",
    "what anticoagulant for afib with a CHA2DS2-VASc score of 2": "atrial-fibrillation-anticoagulation",
    "antibiotics for CAP in adults": "community-acquired-pneumonia",
    "adrenaline dose in anaphylaxis": "anaphylaxis",
    "HbA1c target in T2DM": "type-2-diabetes",
    "how is DVT treated": "venous-thromboembolism",
}


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-indexes")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    env["CLINQA_INDEX__ROOT"] = str(root)
    r = clinqa("index", "build", env=env)
    assert r.returncode == 0, r.stderr
    assert "documents" in r.stdout and (root / "current").exists()
    return env


@pytest.fixture(scope="module")
def server(demo_env):
    with clinqa_server(demo_env) as url:
        yield url


def ask(url: str, question, **kw) -> httpx.Response:
    return httpx.post(f"{url}/v1/ask", json={"question": question, **kw}, timeout=60)


def test_demo_corpus_is_labelled_and_indexed(server):
    info = httpx.get(f"{server}/v1/index").json()
    assert info["counts"]["documents"] >= 40 and info["counts"]["concepts"] > 100
    for name in os.listdir(REPO / "corpus" / "demo"):
        if name.endswith(".md"):
            text = (REPO / "corpus" / "demo" / name).read_text()
            assert 'disclaimer: "demonstration only, not for clinical use"' in text, name


@pytest.mark.parametrize(("question", "doc"), QUESTIONS.items())
def test_demo_questions_get_verified_cited_answers(server, question, doc):
    r = ask(server, question)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "answered", body.get("reason")
    assert body["verified"] and body["index_version"]
    assert {"rewrite", "retrieve", "fuse", "generate", "verify", "total"} <= set(body["timings_ms"])
    assert any(c["doc_id"] == f"demo/{doc}" for c in body["citations"]), [c["doc_id"] for c in body["citations"]]
    for s in body["sentences"]:
        assert s["citations"] and s["support"] == "supported"
    for c in body["citations"]:
        assert c["chunk_text"][c["start"] : c["end"]] == c["quote"]
        source = (REPO / "corpus" / "demo" / f"{c['doc_id'].split('/', 1)[1]}.md").read_text()
        assert source[c["source_start"] : c["source_end"]] == c["quote"]
        assert c["disclaimer"] == "demonstration only, not for clinical use"


def test_out_of_corpus_question_abstains(server):
    body = ask(server, "best treatment for a broken tibia in a dog").json()
    assert body["status"] == "abstained" and body["reason"] and not body["verified"]
    assert body["sentences"] == [] and body["citations"] == []


def test_bad_input_is_422_and_the_server_keeps_serving(server):
    for payload, field in [
        ({"question": ""}, "question"),
        ({"question": "a" * 100_000}, "question"),
        ({"question": 3.14}, "question"),
        ({"question": "gout", "patient": "x"}, "patient"),
    ]:
        r = httpx.post(f"{server}/v1/ask", json=payload, timeout=30)
        assert r.status_code == 422 and r.json()["error"]["field"] == field
    assert ask(server, "first line treatment for hypertension in adults").json()["status"] == "answered"


def test_cli_ask_json_is_the_api_body(server, demo_env):
    question = "first line treatment for hypertension in adults"
    api = ask(server, question).json()
    r = clinqa("ask", "--json", question, env=demo_env)
    assert r.returncode == 0, r.stderr
    import json

    cli = json.loads(r.stdout)
    assert set(cli) == set(api)
    for key in ("status", "answer", "sentences", "citations", "query", "index_version"):
        assert cli[key] == api[key], key

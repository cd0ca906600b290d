"""`clinqa eval retrieval` on files the test writes, run as a real subprocess."""

import json

import pytest

from tests.helpers import clinqa, write_tiny_bert
from tests.test_cli import env

pytestmark = pytest.mark.unit

DOCS = [
    {"id": "gout", "title": "Gout", "text": "Allopurinol lowers serum urate in gout; the target is below 360 umol/L."},
    {"id": "asthma", "title": "Asthma", "text": "An acute asthma attack is treated with oral prednisolone for 5 days."},
    {"id": "af", "title": "Atrial fibrillation", "text": "A DOAC is preferred to warfarin for atrial fibrillation."},
]
QUERIES = [
    {"id": "q1", "text": "urate target on allopurinol"},
    {"id": "q2", "text": "steroid for an asthma attack"},
    {"id": "q3", "text": "anticoagulant for afib"},
]
VOCABULARY = """\
concepts:
  - id: "C0004238"
    name: "Atrial fibrillation"
    synonyms: ["afib"]
"""


def test_eval_retrieval_scores_every_configuration(tmp_path):
    corpus, queries, qrels = tmp_path / "docs.jsonl", tmp_path / "q.jsonl", tmp_path / "qrels.txt"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    qrels.write_text("q1 0 gout 1\nq2 0 asthma 1\nq3 0 af 1\n")
    (tmp_path / "v.yaml").write_text(VOCABULARY)
    out = tmp_path / "results"
    args = ["--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels)]
    reranker = write_tiny_bert(tmp_path / "ce", num_labels=1)
    r = clinqa(
        "eval", "retrieval", *args, "--vocabulary", str(tmp_path / "v.yaml"), "--reranker", str(reranker),
        "--rerank-top", "3", "--work", str(tmp_path / "work"), "--out", str(out), env=env(),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "| hybrid+concepts |" in r.stdout and "| hybrid+rerank |" in r.stdout
    result = json.loads((out / "retrieval-docs.json").read_text())
    assert result["queries"] == 3 and result["documents"] == 3
    assert set(result["metrics"]) >= {"bm25", "bm25+expansion", "dense", "concept", "hybrid", "hybrid+concepts"}
    assert result["metrics"]["hybrid+concepts"]["recall@10"] == 1.0
    assert result["metrics"]["concept"]["recall@1"] == pytest.approx(1 / 3)  # only q3 names a concept
    assert set(result["metrics"]["hybrid+rerank"]) >= {"recall@1", "recall@5", "recall@50", "mrr@10", "ndcg@10"}
    assert result["metrics"]["hybrid+rerank"]["recall@10"] == 1.0  # reranking the top 3 keeps all 3 documents
    assert "hybrid+rerank-blend" in result["metrics"] and "hybrid (rrf)" in result["metrics"]
    run = (out / "run-docs-bm25.trec").read_text().splitlines()
    assert run[0].split()[:4] == ["q1", "Q0", "gout", "1"]
    assert (out / "retrieval-docs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "retrieval.md").read_text()
    assert "| hybrid+rerank |" in summary and "![retrieval-docs](retrieval-docs.png)" in summary
    assert "Command: `clinqa eval retrieval --corpus" in (out / "retrieval-docs.md").read_text()


def test_eval_retrieval_unloadable_reranker_is_one_line(tmp_path):
    corpus, queries, qrels = tmp_path / "docs.jsonl", tmp_path / "q.jsonl", tmp_path / "qrels.txt"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    qrels.write_text("q1 0 gout 1\n")
    args = ["--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels)]
    r = clinqa(
        "eval", "retrieval", *args, "--reranker", str(tmp_path / "missing"), "--work", str(tmp_path / "w"),
        "--out", str(tmp_path / "o"), env=env(),
    )  # fmt: skip
    assert r.returncode == 1 and "cannot load cross-encoder" in r.stderr and "Traceback" not in r.stderr


def test_eval_retrieval_half_given_files_is_a_usage_error(tmp_path):
    r = clinqa("eval", "retrieval", "--corpus", str(tmp_path / "docs.jsonl"), env=env())
    assert r.returncode == 2 and "go together" in r.stderr

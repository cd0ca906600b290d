"""`clinqa eval citations`: ALCE citation recall and precision, judged by the verifier, on the tiny index."""

import json

import pytest

from app.eval.citations import eval_settings, evaluate_pipeline, score_sentences, write_outputs
from app.eval.datasets import Collection
from app.pipeline.runner import Pipeline
from app.pipeline.types import ScoredChunk, SpanRef
from tests.helpers import clinqa
from tests.test_cli import env

pytestmark = pytest.mark.unit

QUESTIONS = {
    "q1": "What is the first-line drug for hypertension in adults under 55?",
    "q2": "How is an acute gout flare treated?",
    "q3": "What dose of prednisolone is given for an acute asthma attack?",
    "q4": "Which vaccine prevents measles?",  # not in the corpus: the evidence gate abstains
}
QRELS = {"q1": {"tiny/hypertension": 1}, "q2": {"tiny/gout": 1}, "q3": {"tiny/asthma": 1}, "q4": {"tiny/gout": 1}}
VIEW_KEYS = {
    "citation_recall",
    "citation_recall_lenient",
    "citation_precision",
    "citation_precision_alce",
    "gold_cited_rate",
    "gold_citation_share",
    "sentences_per_answer",
    "citations_per_sentence",
}


@pytest.fixture(scope="module")
def flag_pipeline(tiny_settings) -> Pipeline:
    pipeline = Pipeline.load(eval_settings(tiny_settings))
    assert pipeline.settings.verify.policy == "flag"
    return pipeline


def test_citation_eval_end_to_end_on_the_tiny_index(flag_pipeline, tmp_path):
    collection = Collection("tiny-test", [], dict(QUESTIONS), QRELS)
    result = evaluate_pipeline(flag_pipeline, collection)

    assert result.questions == 4 and result.index_version == flag_pipeline.index_version
    a = result.answers
    assert (a["answered"], a["abstained"], a["answer_rate"]) == (3, 1, 0.75)
    assert a["abstention_reasons"] == {"the indexed guidelines do not cover this question": 1}
    assert a["gold_in_evidence_rate"] == 1.0 and a["verified_rate"] == 1.0
    for view in (result.draft, result.answer):
        assert set(view) >= VIEW_KEYS
        assert all(0.0 <= view[k] <= 1.0 for k in VIEW_KEYS - {"sentences_per_answer", "citations_per_sentence"})
        assert view["answers"] == 3 and 1 <= view["sentences_per_answer"] <= 3
        # the extractive generator quotes its evidence, one passage per sentence
        assert view["citation_recall"] == 1.0 and view["citation_precision"] == 1.0
        assert view["citations_per_sentence"] == 1.0 and view["gold_cited_rate"] == 1.0
    assert result.latency_ms["median"] > 0 and result.verifier["class"] == "CitationVerifier"
    assert result.settings["verify"]["policy"] == "flag" and "api_key" not in result.settings["generate"]

    js, md = write_outputs(result, tmp_path, "clinqa eval citations --corpus x")
    body = json.loads(js.read_text())
    assert js.name == "citations-tiny-test.json" and body["answer"] == result.answer
    assert [r["status"] for r in body["records"]] == ["answered"] * 3 + ["abstained"]
    text = md.read_text()
    assert "# Citation quality" in text and "### tiny-test: 4 questions" in text
    assert "| citation precision (ALCE binary) |" in text and "Command: `clinqa eval citations --corpus x`" in text


def test_precision_counts_a_citation_that_adds_nothing(flag_pipeline):
    chunks = flag_pipeline.index.chunks
    gout = next(c for c in chunks if "Allopurinol starts at 100 mg" in c.text)
    asthma = next(c for c in chunks if "prednisolone 40 mg" in c.text)
    evidence = [ScoredChunk(chunk=c, row=chunks.index(c), score=1.0) for c in (gout, asthma)]
    claim = "Allopurinol starts at 100 mg daily and is titrated to keep serum urate below 360 micromol/L."
    start = gout.text.index(claim)
    good = SpanRef(chunk_id=gout.id, start=start, end=start + len(claim))
    off_topic = SpanRef(chunk_id=asthma.id, start=0, end=len(asthma.text))

    both, wrong, none = score_sentences(
        flag_pipeline, [(claim, (good, off_topic)), (claim, (off_topic,)), (claim, ())], evidence
    )
    # supported together; the asthma passage alone does not support it and leaving it out changes nothing
    assert (both.support, both.citations, both.irrelevant, both.alce_precise) == ("supported", 2, 1, 1)
    assert (wrong.support, wrong.citations, wrong.irrelevant, wrong.alce_precise) == ("unsupported", 1, 1, 0)
    assert (none.support, none.citations, none.irrelevant) == ("unsupported", 0, 0)
    assert score_sentences(flag_pipeline, [], evidence) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nope"], "choose --dataset pubmedqa|medquad"),
        (["--dataset", "pubmedqa", "--split", "dev"], "--split must be test or train"),
        (["--corpus", "docs.jsonl"], "go together"),
    ],
)
def test_eval_citations_bad_option_is_one_line_and_exit_2(tmp_path, args, message):
    r = clinqa("eval", "citations", *args, "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), env=env())
    assert r.returncode == 2 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()

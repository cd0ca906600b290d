"""The whole online pipeline on the tiny index: answers, citations at their offsets, abstention."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_answer_cites_verbatim_spans(tiny_pipeline):
    out = tiny_pipeline.ask("What is the target serum urate on allopurinol?")
    a = out.answer
    assert a.status == "answered" and a.verified
    assert a.sentences and all(s.support == "supported" and s.citations for s in a.sentences)
    by_number = {c.number: c for c in a.citations}
    chunks = {c.id: c for c in tiny_pipeline.index.chunks}
    for s in a.sentences:
        for n in s.citations:
            c = by_number[n]
            assert c.quote == s.text
            assert chunks[c.chunk_id].text[c.start : c.end] == c.quote
            assert chunks[c.chunk_id].start + c.start == c.source_start
            source = Path(tiny_pipeline.index.documents[c.doc_id].source_path).read_text(encoding="utf-8")
            assert source[c.source_start : c.source_end] == c.quote
    assert any("360 micromol/L" in s.text for s in a.sentences)
    assert set(out.timings_ms) >= {"rewrite", "retrieve", "fuse", "gate", "generate", "verify", "total"}
    assert out.index_version == tiny_pipeline.index.version
    assert [n.stage for n in out.notes] == ["rerank"] and out.notes[0].status == "skipped"


def test_rewrite_expands_abbreviations_and_links_concepts(tiny_pipeline):
    q = tiny_pipeline.rewriter.run("first line drugs for HTN")
    assert q.rewritten == "first line drugs for HTN (Hypertension)"
    assert [c.id for c in q.concepts] == ["C0020538"]
    assert "high blood pressure" in q.bm25_text


def test_off_topic_question_abstains_with_reason(tiny_pipeline):
    out = tiny_pipeline.ask("best treatment for a broken tibia in a dog")
    assert out.answer.status == "abstained" and not out.answer.verified
    assert "tibia" in out.answer.reason and out.answer.sentences == ()
    assert out.evidence  # the closest sources are still reported


def test_empty_and_whitespace_questions_do_not_crash(tiny_pipeline):
    assert tiny_pipeline.ask("   ").answer.status == "abstained"
    assert isinstance(tiny_pipeline.search("the of and").results, list)

"""The evidence gate: coverage, dense similarity, and the optional cross-encoder floor."""

import pytest

from app.config import AbstainSettings
from app.pipeline.abstain import EvidenceGate
from app.pipeline.terms import query_terms

pytestmark = pytest.mark.unit

QUESTION = "What is the target serum urate on allopurinol?"


def gate_check(pipeline, settings: AbstainSettings, rerank: float | None = None):
    outcome = pipeline.search(QUESTION, top_k=5)
    evidence = outcome.results
    if rerank is not None:
        evidence = [c.model_copy(update={"scores": {**c.scores, "rerank": rerank - i}}) for i, c in enumerate(evidence)]
    terms = query_terms(outcome.query, pipeline.analyzer, pipeline.term_stats)
    return EvidenceGate(settings, pipeline.analyzer, pipeline.index.graph).run(terms, evidence)


def test_defaults_answer_a_covered_question(tiny_pipeline):
    check = gate_check(tiny_pipeline, AbstainSettings())
    assert check.sufficient and check.top_rerank_score is None and check.top_dense_score > 0.5


def test_rerank_floor_applies_only_when_a_cross_encoder_scored(tiny_pipeline):
    floor = AbstainSettings(min_rerank_score=2.0)
    assert gate_check(tiny_pipeline, floor).sufficient  # no rerank scores: the floor does not apply
    assert gate_check(tiny_pipeline, floor, rerank=3.0).sufficient
    check = gate_check(tiny_pipeline, floor, rerank=1.5)
    assert not check.sufficient and "cross-encoder score 1.50 < 2.00" in check.reason
    assert check.top_rerank_score == 1.5


def test_dense_floor_and_empty_evidence(tiny_pipeline):
    check = gate_check(tiny_pipeline, AbstainSettings(min_dense_score=0.99))
    assert not check.sufficient and "similarity" in check.reason
    outcome = tiny_pipeline.search(QUESTION)
    terms = query_terms(outcome.query, tiny_pipeline.analyzer, tiny_pipeline.term_stats)
    empty = EvidenceGate(AbstainSettings(), tiny_pipeline.analyzer, tiny_pipeline.index.graph).run(terms, [])
    assert not empty.sufficient and empty.query_coverage == 0.0

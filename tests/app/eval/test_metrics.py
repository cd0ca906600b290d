import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.eval.metrics import evaluate, mrr_at, ndcg_at, recall_at

pytestmark = pytest.mark.unit


def test_known_values():
    rel = {"a": 2, "b": 1}
    ranked = ["x", "a", "y", "b"]
    assert recall_at(ranked, rel, 2) == 0.5 and recall_at(ranked, rel, 4) == 1.0
    assert mrr_at(ranked, rel, 10) == 0.5
    dcg = 3 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, rel, 10) == pytest.approx(dcg / idcg)


def test_evaluate_means_over_judged_queries_only():
    runs = {"q1": ["d1"], "q2": ["d9"]}
    out = evaluate(runs, {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 0}})
    assert out["recall@1"] == 0.5 and out["ndcg@10"] == 0.5 and out["mrr@10"] == 0.5
    assert evaluate({}, {}) == {}


@given(
    st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=8),
    st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3)),
)
def test_metrics_are_bounded_and_perfect_ranking_scores_one(ranked, rel):
    for k in (1, 5, 10):
        for metric in (recall_at, mrr_at, ndcg_at):
            assert 0.0 <= metric(ranked, rel, k) <= 1.0 + 1e-9
    ideal = sorted((d for d, g in rel.items() if g > 0), key=lambda d: -rel[d])
    if ideal:
        assert ndcg_at(ideal, rel, 10) == pytest.approx(1.0)
        assert recall_at(ideal, rel, len(ideal)) == 1.0

"""The cross-encoder path with a real (random-weight) model that the test writes with transformers."""

from pathlib import Path

import pytest

from app.config import RerankSettings
from app.pipeline.rerank import CrossEncoderReranker, RerankerLoadError, blend_with_fused
from app.pipeline.types import Chunk, Query, ScoredChunk
from tests.helpers import write_tiny_bert

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-ce"), num_labels=1)


def candidates(n: int) -> list[ScoredChunk]:
    texts = ["ramipril dose daily", "asthma treatment", "gout in adults", "amlodipine for hypertension"]
    return [
        ScoredChunk(
            chunk=Chunk(
                id=f"c{i}",
                doc_id="d",
                ordinal=i,
                section_path=("S",),
                breadcrumb="S",
                text=texts[i % 4],
                start=0,
                end=len(texts[i % 4]),
                n_tokens=4,
            ),
            row=i,
            score=1.0 / (i + 1),
            scores={"fused": 1.0 / (i + 1)},
            ranks={"bm25": i + 1},
        )
        for i in range(n)
    ]


QUERY = Query(original="treatment for hypertension", rewritten="treatment for hypertension", bm25_text="x")


def test_reranks_top_n_and_keeps_the_tail(tiny_cross_encoder):
    reranker = CrossEncoderReranker(RerankSettings(model=str(tiny_cross_encoder), top_n=3, max_length=64)).load()
    out = reranker.run(QUERY, candidates(5))
    assert len(out) == 5
    head = out[:3]
    assert sorted(c.chunk.id for c in head) == ["c0", "c1", "c2"]
    assert [c.ranks["rerank"] for c in head] == [1, 2, 3]
    assert [c.score for c in head] == sorted((c.score for c in head), reverse=True)
    assert all("rerank" in c.scores and "fused" in c.scores for c in head)
    assert [c.chunk.id for c in out[3:]] == ["c3", "c4"] and "rerank" not in out[3].scores


def test_empty_input(tiny_cross_encoder):
    reranker = CrossEncoderReranker(RerankSettings(model=str(tiny_cross_encoder))).load()
    assert reranker.run(QUERY, []) == []


def test_needs_a_model_and_names_a_bad_one(tmp_path):
    with pytest.raises(ValueError, match=r"rerank\.model"):
        CrossEncoderReranker(RerankSettings())
    with pytest.raises(RerankerLoadError, match="cannot load cross-encoder"):
        CrossEncoderReranker(RerankSettings(model=str(tmp_path / "missing"))).load()


def test_blend_keeps_the_fused_order_as_a_vote(tiny_cross_encoder):
    pure = CrossEncoderReranker(RerankSettings(model=str(tiny_cross_encoder), top_n=4)).load()
    q = Query(original="ramipril dose", rewritten="ramipril dose", bm25_text="ramipril dose")
    reranked = pure.run(q, candidates(4))
    assert {c.ranks["fused"] for c in reranked} == {1, 2, 3, 4}
    half = blend_with_fused(reranked, 0.5)
    for c in half:
        assert c.score == pytest.approx(0.5 / (60 + c.ranks["rerank"]) + 0.5 / (60 + c.ranks["fused"]))
    assert [c.ranks["fused"] for c in blend_with_fused(reranked, 0.0)] == [1, 2, 3, 4]
    assert [c.chunk.id for c in blend_with_fused(reranked, 1.0)] == [c.chunk.id for c in reranked]
    blended = CrossEncoderReranker(RerankSettings(model=str(tiny_cross_encoder), top_n=4, blend=0.5)).load()
    assert [c.chunk.id for c in blended.run(q, candidates(4))] == [c.chunk.id for c in half]

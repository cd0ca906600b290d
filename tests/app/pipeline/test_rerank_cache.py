"""Rerank scores cached per (model, question, chunk id, index version); windows on a real reranker."""

from __future__ import annotations

import pytest

from app.config import RerankSettings
from app.pipeline.cache import LruCache, rerank_key
from app.pipeline.rerank import CrossEncoderReranker
from tests.app.pipeline.test_rerank import QUERY, candidates
from tests.helpers import write_tiny_bert

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("ce"), num_labels=1)


def test_lru_cache_evicts_the_least_recently_used():
    cache: LruCache[float] = LruCache(2)
    cache.put("a", 1.0)
    cache.put("b", 2.0)
    assert cache.get("a") == 1.0
    cache.put("c", 3.0)
    assert cache.get("b") is None and cache.get("a") == 1.0 and len(cache) == 2
    with pytest.raises(ValueError, match="cache size"):
        LruCache(-1)
    off: LruCache[float] = LruCache(0)
    off.put("a", 1.0)
    assert off.get("a") is None


def test_hit_after_a_repeat_and_none_across_index_versions(tiny_ce):
    reranker = CrossEncoderReranker(RerankSettings(model=str(tiny_ce), top_n=3)).load()
    first = reranker.run(QUERY, candidates(5), "v1")
    assert (reranker.cache.hits, reranker.cache.misses) == (0, 3)
    again = reranker.run(QUERY, candidates(5), "v1")
    assert (reranker.cache.hits, reranker.cache.misses) == (3, 3)
    assert [(c.chunk.id, c.score) for c in again] == [(c.chunk.id, c.score) for c in first]
    reranker.run(QUERY, candidates(5), "v2")  # another index version: nothing reused
    assert (reranker.cache.hits, reranker.cache.misses) == (3, 6)
    other = QUERY.model_copy(update={"rewritten": "gout"})
    reranker.run(other, candidates(5), "v1")  # another question: nothing reused
    assert reranker.cache.hits == 3
    assert rerank_key(reranker.model_key, "gout", "c0", "v1") in reranker.cache._data


def test_model_key_names_what_shapes_a_score(tiny_ce):
    a = CrossEncoderReranker(RerankSettings(model=str(tiny_ce)))
    b = CrossEncoderReranker(RerankSettings(model=str(tiny_ce), window_tokens=64))
    c = CrossEncoderReranker(RerankSettings(model=str(tiny_ce), backend="onnx", precision="int8"))
    assert len({a.model_key, b.model_key, c.model_key}) == 3


def test_cache_size_zero_scores_every_time(tiny_ce):
    reranker = CrossEncoderReranker(RerankSettings(model=str(tiny_ce), top_n=2, cache_size=0)).load()
    reranker.run(QUERY, candidates(3), "v1")
    reranker.run(QUERY, candidates(3), "v1")
    assert reranker.cache.hits == 0


def test_windowed_passages_fit_the_budget(tiny_ce):
    reranker = CrossEncoderReranker(RerankSettings(model=str(tiny_ce), top_n=3, window_tokens=16)).load()
    long = candidates(1)[0]
    text = "gout " * 5 + "amlodipine for hypertension treatment " + "asthma " * 30
    long = long.model_copy(update={"chunk": long.chunk.model_copy(update={"text": text, "end": len(text)})})
    passage = reranker.passage(QUERY, long)
    assert passage.startswith("S\n") and "hypertension" in passage
    assert len(reranker.model.tokenizer(passage, add_special_tokens=False)["input_ids"]) <= 16
    out = reranker.run(QUERY, [long, *candidates(3)[1:]], "v1")
    assert len(out) == 3

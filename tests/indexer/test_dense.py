"""FAISS index types chosen by size, and their search quality on normalised vectors."""

import numpy as np
import pytest

from app.config import FaissSettings
from indexer.dense import build_faiss, configure_search, faiss_build_params

pytestmark = pytest.mark.unit


def unit_vectors(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_auto_picks_flat_below_and_hnsw_above_the_threshold():
    s = FaissSettings(auto_threshold=1000)
    assert faiss_build_params(s, 999)["type"] == "flat"
    assert faiss_build_params(s, 1000)["type"] == "hnsw"
    assert faiss_build_params(FaissSettings(index_type="ivfpq"), 10_000)["nlist"] == 400


@pytest.mark.parametrize(("kind", "min_recall"), [("flat", 1.0), ("hnsw", 0.95), ("ivfpq", 0.5)])
def test_index_types_find_the_nearest_neighbour(kind, min_recall):
    x = unit_vectors(4000)
    settings = FaissSettings(index_type=kind, pq_m=16, ivf_nprobe=32)
    index, info = build_faiss(x, settings)
    configure_search(index, settings)
    assert info["type"] == kind and index.ntotal == 4000
    queries = x[:100] + 0.05 * unit_vectors(100, seed=1)
    _, rows = index.search(queries, 1)
    recall = float(np.mean(rows[:, 0] == np.arange(100)))
    assert recall >= min_recall


def test_pq_m_must_divide_the_dimension():
    with pytest.raises(ValueError, match="must divide"):
        build_faiss(unit_vectors(2000), FaissSettings(index_type="ivfpq", pq_m=7))


def test_empty_input_gives_an_empty_index():
    index, _ = build_faiss(np.zeros((0, 64), dtype=np.float32), FaissSettings())
    assert index.ntotal == 0

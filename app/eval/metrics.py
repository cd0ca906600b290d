"""Ranking metrics at document level, with graded relevance (TREC qrels)."""

from __future__ import annotations

import math

Qrels = dict[str, dict[str, int]]  # query id -> document id -> grade (> 0 is relevant)


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    """nDCG with gains 2^grade - 1 and log2 discounts (Järvelin & Kekäläinen)."""
    dcg = sum((2 ** relevant.get(doc, 0) - 1) / math.log2(i + 1) for i, doc in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def evaluate(runs: dict[str, list[str]], qrels: Qrels, ks: tuple[int, ...] = (1, 5, 10, 50)) -> dict[str, float]:
    """Mean metrics over the queries that have relevant documents."""
    queries = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    if not queries:
        return {}
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = sum(recall_at(runs.get(q, []), qrels[q], k) for q in queries) / len(queries)
    out["mrr@10"] = sum(mrr_at(runs.get(q, []), qrels[q], 10) for q in queries) / len(queries)
    out["ndcg@10"] = sum(ndcg_at(runs.get(q, []), qrels[q], 10) for q in queries) / len(queries)
    return out

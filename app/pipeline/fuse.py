"""Rank fusion of the retrieval channels."""

from __future__ import annotations

from app.config import FuseSettings
from app.pipeline.types import Chunk, RankedList, ScoredChunk


class ReciprocalRankFuser:
    """Fuse ranked lists with reciprocal rank fusion (Cormack et al., 2009): sum of w / (k + rank), w the
    channel's weight."""

    def __init__(self, settings: FuseSettings) -> None:
        if settings.rrf_k <= 0:
            raise ValueError(f"rrf_k must be > 0, got {settings.rrf_k}")
        self.settings = settings

    def run(self, ranked: list[RankedList], chunks: list[Chunk], top_k: int | None = None) -> list[ScoredChunk]:
        k = self.settings.rrf_k
        fused: dict[int, float] = {}
        scores: dict[int, dict[str, float]] = {}
        ranks: dict[int, dict[str, int]] = {}
        for lst in ranked:
            weight = self.settings.weights.get(lst.channel, 1.0)
            for rank, (row, score) in enumerate(lst.hits, start=1):
                fused[row] = fused.get(row, 0.0) + weight / (k + rank)
                scores.setdefault(row, {})[lst.channel] = score
                ranks.setdefault(row, {})[lst.channel] = rank
        order = sorted(fused, key=lambda r: (-fused[r], r))[: top_k or self.settings.top_k]
        return [
            ScoredChunk(
                chunk=chunks[row],
                row=row,
                score=fused[row],
                scores={**scores[row], "fused": fused[row]},
                ranks=ranks[row],
            )
            for row in order
        ]

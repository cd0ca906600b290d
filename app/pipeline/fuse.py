"""Fusion of the retrieval channels: reciprocal rank fusion or normalised weighted scores."""

from __future__ import annotations

from app.config import FuseSettings
from app.pipeline.types import Chunk, RankedList, ScoredChunk


class _Fuser:
    def __init__(self, settings: FuseSettings) -> None:
        self.settings = settings

    def contributions(self, lst: RankedList) -> list[float]:
        """Each hit's share of the fused score, in the list's order."""
        raise NotImplementedError

    def run(self, ranked: list[RankedList], chunks: list[Chunk], top_k: int | None = None) -> list[ScoredChunk]:
        fused: dict[int, float] = {}
        scores: dict[int, dict[str, float]] = {}
        ranks: dict[int, dict[str, int]] = {}
        for lst in ranked:
            for rank, ((row, score), share) in enumerate(zip(lst.hits, self.contributions(lst), strict=True), 1):
                fused[row] = fused.get(row, 0.0) + share
                scores.setdefault(row, {})[lst.channel] = score
                ranks.setdefault(row, {})[lst.channel] = rank
        order = sorted(fused, key=lambda r: (-fused[r], r))[: top_k or self.settings.top_k]
        return [
            ScoredChunk(
                chunk=chunks[row],
                row=row,
                score=fused[row],
                scores={**scores[row], "fused": fused[row]},
                ranks={**ranks[row], "fused": position},
            )
            for position, row in enumerate(order, start=1)
        ]


class ReciprocalRankFuser(_Fuser):
    """Reciprocal rank fusion (Cormack et al., 2009): sum of w / (k + rank), w the channel's weight.
    Needs no score calibration between channels, which is why it is the default."""

    def __init__(self, settings: FuseSettings) -> None:
        if settings.rrf_k <= 0:
            raise ValueError(f"rrf_k must be > 0, got {settings.rrf_k}")
        super().__init__(settings)

    def contributions(self, lst: RankedList) -> list[float]:
        weight, k = self.settings.weights.get(lst.channel, 1.0), self.settings.rrf_k
        return [weight / (k + rank) for rank in range(1, len(lst.hits) + 1)]


class WeightedScoreFuser(_Fuser):
    """Sum of w * min-max normalised score per channel (each list normalised over its own hits: the best
    hit gets 1, the worst 0, a single hit 1). Uses how far apart the scores are, which RRF throws away."""

    def contributions(self, lst: RankedList) -> list[float]:
        weight = self.settings.weights.get(lst.channel, 1.0)
        values = [s for _, s in lst.hits]
        if not values:
            return []
        low, span = min(values), max(values) - min(values)
        return [weight * ((s - low) / span if span > 0 else 1.0) for s in values]


def make_fuser(settings: FuseSettings) -> _Fuser:
    return WeightedScoreFuser(settings) if settings.method == "weighted" else ReciprocalRankFuser(settings)

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import FuseSettings
from app.pipeline.fuse import ReciprocalRankFuser, WeightedScoreFuser, make_fuser
from app.pipeline.types import Chunk, RankedList

pytestmark = pytest.mark.unit


def chunk(i: int) -> Chunk:
    return Chunk(
        id=f"c{i}", doc_id="d", ordinal=i, section_path=("S",), breadcrumb="S", text=f"t{i}", start=0, end=2, n_tokens=1
    )


CHUNKS = [chunk(i) for i in range(50)]


def test_rrf_scores_ranks_and_order():
    fuser = ReciprocalRankFuser(FuseSettings(method="rrf", rrf_k=60, weights={}))
    out = fuser.run(
        [RankedList(channel="bm25", hits=((1, 9.0), (2, 5.0))), RankedList(channel="dense", hits=((2, 0.9), (3, 0.5)))],
        CHUNKS,
    )
    assert [c.chunk.id for c in out] == ["c2", "c1", "c3"]
    assert out[0].scores["fused"] == pytest.approx(1 / 62 + 1 / 61)
    assert out[0].ranks == {"bm25": 2, "dense": 1, "fused": 1} and out[1].ranks["fused"] == 2
    assert out[0].scores["bm25"] == 5.0 and out[0].scores["dense"] == 0.9


def test_rrf_default_construction_and_invalid_k():
    assert ReciprocalRankFuser(FuseSettings()).settings.rrf_k == 60
    with pytest.raises(ValueError, match="rrf_k must be > 0, got 0"):
        ReciprocalRankFuser(FuseSettings(rrf_k=0))


def test_rrf_empty_input():
    assert ReciprocalRankFuser(FuseSettings()).run([], CHUNKS) == []
    assert ReciprocalRankFuser(FuseSettings()).run([RankedList(channel="bm25", hits=())], CHUNKS) == []


_ranked = st.lists(st.integers(0, 49), unique=True, max_size=20).map(
    lambda rows: tuple((r, float(len(rows) - i)) for i, r in enumerate(rows))
)


@given(st.lists(_ranked, max_size=3), st.integers(1, 100), st.integers(1, 30))
def test_rrf_properties(lists, k, top_k):
    ranked = [RankedList(channel=ch, hits=h) for ch, h in zip(("bm25", "dense", "concept"), lists, strict=False)]
    settings = FuseSettings(rrf_k=k, weights={"bm25": 1.0, "dense": 1.0, "concept": 0.5})
    out = ReciprocalRankFuser(settings).run(ranked, CHUNKS, top_k=top_k)
    all_rows = {r for lst in ranked for r, _ in lst.hits}
    assert len(out) == min(top_k, len(all_rows))
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)
    for c in out:
        expected = sum(settings.weights[ch] / (k + rank) for ch, rank in c.ranks.items() if ch != "fused")
        assert c.score == pytest.approx(expected)
        assert c.chunk is CHUNKS[c.row]
    # A row ranked first by every channel that saw anything must come out first.
    firsts = {lst.hits[0][0] for lst in ranked if lst.hits}
    if len(firsts) == 1 and all(lst.hits for lst in ranked):
        assert out[0].row == firsts.pop()


def test_channel_weights_scale_their_terms():
    lists = [RankedList(channel="bm25", hits=((1, 9.0),)), RankedList(channel="concept", hits=((2, 3.0),))]
    equal = ReciprocalRankFuser(FuseSettings(weights={})).run(lists, CHUNKS)
    assert equal[0].score == equal[1].score == pytest.approx(1 / 61)
    out = ReciprocalRankFuser(FuseSettings(weights={"concept": 0.5})).run(lists, CHUNKS)
    assert [c.chunk.id for c in out] == ["c1", "c2"] and out[1].score == pytest.approx(0.5 / 61)


def test_weighted_fusion_normalises_each_channel():
    fuser = make_fuser(FuseSettings(method="weighted", weights={"bm25": 1.0, "dense": 1.0}))
    assert isinstance(fuser, WeightedScoreFuser)
    out = fuser.run(
        [
            RankedList(channel="bm25", hits=((1, 20.0), (2, 10.0), (3, 0.0))),
            RankedList(channel="dense", hits=((2, 0.9), (3, 0.8), (4, 0.4))),
        ],
        CHUNKS,
    )
    # bm25: 1 -> 1.0, 2 -> 0.5, 3 -> 0.0; dense: 2 -> 1.0, 3 -> 0.8, 4 -> 0.0
    assert [c.chunk.id for c in out] == ["c2", "c1", "c3", "c4"]
    assert out[0].scores["fused"] == pytest.approx(1.5) and out[2].score == pytest.approx(0.8)
    assert out[0].ranks == {"bm25": 2, "dense": 1, "fused": 1} and out[0].scores["bm25"] == 10.0


def test_weighted_fusion_single_hit_counts_fully():
    out = make_fuser(FuseSettings(method="weighted", weights={"concept": 0.5})).run(
        [RankedList(channel="concept", hits=((7, 3.0),))], CHUNKS
    )
    assert out[0].score == pytest.approx(0.5)


@given(st.lists(_ranked, max_size=3), st.integers(1, 30))
def test_weighted_fusion_properties(lists, top_k):
    ranked = [RankedList(channel=ch, hits=h) for ch, h in zip(("bm25", "dense", "concept"), lists, strict=False)]
    settings = FuseSettings(method="weighted", weights={"bm25": 1.0, "dense": 1.0, "concept": 0.5})
    out = make_fuser(settings).run(ranked, CHUNKS, top_k=top_k)
    all_rows = {r for lst in ranked for r, _ in lst.hits}
    assert len(out) == min(top_k, len(all_rows))
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)
    bound = sum(settings.weights[lst.channel] for lst in ranked)
    assert all(-1e-9 <= c.score <= bound + 1e-9 for c in out)
    firsts = {lst.hits[0][0] for lst in ranked if lst.hits}
    if len(firsts) == 1 and all(lst.hits for lst in ranked):
        assert out[0].row == firsts.pop() and out[0].score == pytest.approx(bound)


def test_default_fuser_is_weighted_and_handles_empty_input():
    fuser = make_fuser(FuseSettings())
    assert isinstance(fuser, WeightedScoreFuser) and fuser.settings.weights["bm25"] == 0.25
    assert fuser.run([], CHUNKS) == [] and fuser.run([RankedList(channel="dense", hits=())], CHUNKS) == []

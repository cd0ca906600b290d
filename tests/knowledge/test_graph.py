import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knowledge.graph import MIN_PAIR_COUNT, KnowledgeGraph
from knowledge.schema import Concept, Relation, Vocabulary

pytestmark = pytest.mark.unit

VOCAB = Vocabulary(
    concepts=(
        Concept(id="A", name="Anticoagulants", synonyms=("blood thinners",)),
        Concept(id="W", name="Warfarin"),
        Concept(id="X", name="Apixaban", abbreviations=("APX",)),
        Concept(id="F", name="Atrial fibrillation", abbreviations=("AF",)),
        Concept(id="G", name="Gout"),
    ),
    relations=(
        Relation(source="W", type="isa", target="A"),
        Relation(source="X", type="isa", target="A"),
        Relation(source="X", type="may_prevent", target="F"),
    ),
)


def test_pmi_cooccurrence_subtypes_and_context_score():
    mentions = [["F", "X"], ["F", "X"], ["F", "W"], ["G"], ["G"], ["G"]]
    g = KnowledgeGraph.build(VOCAB, mentions)
    (other, pmi, n), *_ = g.cooccurring("F")
    assert other == "X" and n == 2 and pmi == pytest.approx(round(math.log(6 * 2 / (3 * 2)), 4))
    assert g.cooccurring("G") == []  # never together with anything
    assert sorted(g.subtypes("A")) == ["W", "X"]
    assert g.context_score("X", {"F"}) > g.context_score("W", {"F"}) == 0.0  # W-F seen once only
    again = KnowledgeGraph.from_dict(g.to_dict())
    assert again.cooccurring("F") == g.cooccurring("F")


def test_lookup_ranks_exact_then_prefix_then_substring():
    g = KnowledgeGraph.build(VOCAB, [["X"], ["X"], ["W"]])
    assert [c.id for c, _, _ in g.lookup("AF")] == ["F"]
    assert [c.id for c, _, _ in g.lookup("af")] == ["F"]  # normalised: lookup is not the linker
    assert [(c.id, how) for c, _, how in g.lookup("blood thin")] == [("A", "synonym")]
    assert [c.id for c, _, _ in g.lookup("arin")] == ["W"]
    assert g.lookup("  ") == []


@given(st.lists(st.lists(st.sampled_from("AWXFG"), max_size=4), max_size=30))
def test_cooccurrence_is_symmetric_positive_and_counted(mentions):
    g = KnowledgeGraph.build(VOCAB, mentions)
    for a in "AWXFG":
        for b, pmi, n in g.cooccurring(a):
            assert pmi > 0 and n >= MIN_PAIR_COUNT
            assert n == sum(1 for m in mentions if a in m and b in m)
            assert (a, pmi, n) in g.cooccurring(b)

import pytest
import yaml

from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker
from knowledge.schema import Concept, Vocabulary
from knowledge.vocabulary import VocabularyError, load_vocabulary
from tests.helpers import TINY_VOCABULARY

pytestmark = pytest.mark.unit

CONCEPTS = [
    Concept(id="C0004238", name="Atrial fibrillation", synonyms=("afib", "a-fib"), abbreviations=("AF",)),
    Concept(id="C0024117", name="Chronic obstructive pulmonary disease", abbreviations=("COPD",)),
    Concept(id="C0694549", name="Community-acquired pneumonia", abbreviations=("CAP",)),
    Concept(id="C0003015", name="ACE inhibitor", synonyms=("angiotensin-converting enzyme inhibitor",)),
    Concept(id="C0011849", name="Diabetes mellitus"),
    Concept(id="C0011860", name="Type 2 diabetes mellitus", synonyms=("type 2 diabetes",), abbreviations=("T2DM",)),
]


def ids(text):
    return [(m.concept_id, m.text) for m in ConceptLinker(CONCEPTS).link(text)]


def test_synonyms_and_abbreviations():
    assert ids("anticoagulation in afib or A-fib") == [("C0004238", "afib"), ("C0004238", "A-fib")]
    assert ids("AF with COPD") == [("C0004238", "AF"), ("C0024117", "COPD")]


def test_short_or_word_like_abbreviations_keep_their_case():
    assert ids("af and cap") == []
    assert ids("copd") == [("C0024117", "copd")]  # long and distinctive: any case
    assert ids("CAP in adults") == [("C0694549", "CAP")]


def test_longest_match_wins_and_plurals_fold():
    assert ids("type 2 diabetes mellitus") == [("C0011860", "type 2 diabetes mellitus")]
    assert ids("ACE inhibitors") == [("C0003015", "ACE inhibitors")]


def test_empty_text():
    assert ConceptLinker(CONCEPTS).link("") == []


def test_vocabulary_loads_and_rejects_dangling_relations(tmp_path):
    good = tmp_path / "v.yaml"
    good.write_text(TINY_VOCABULARY)
    vocab = load_vocabulary(good)
    assert len(vocab.concepts) == 5 and len(vocab.relations) == 2
    raw = yaml.safe_load(TINY_VOCABULARY)
    raw["relations"].append({"source": "C0002144", "type": "may_treat", "target": "C9999999"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(VocabularyError, match="unknown concept 'C9999999'"):
        load_vocabulary(bad)
    with pytest.raises(VocabularyError, match="cannot read"):
        load_vocabulary(tmp_path / "missing.yaml")


def test_graph_roundtrip_postings_and_neighbours(tmp_path):
    vocab = Vocabulary.model_validate(yaml.safe_load(TINY_VOCABULARY))
    graph = KnowledgeGraph.build(vocab, [["C0018099", "C0018099"], [], ["C0002144"]])
    again = KnowledgeGraph.from_dict(graph.to_dict())
    assert again.postings("C0018099") == [(0, 2)]
    assert ("in", "may_treat", "C0002144") in again.neighbours("C0018099")
    assert again.concept("C0002144").synonyms == ("Zyloprim",)
    assert again.idf("C0018099") > 0
    assert again.concept("nope") is None

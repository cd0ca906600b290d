import pytest

from knowledge.disambiguation import AbbreviationDisambiguator, relation_overlap
from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker
from knowledge.schema import Concept, Relation, Vocabulary
from knowledge.vocabulary import load_vocabulary
from tests.helpers import REPO

pytestmark = pytest.mark.unit

EMBOLISM, EXAM, DVT, CTPA, MURMUR, SYNCOPE = "C0034065", "C0031809", "C0149871", "CLINQA:ctpa", "C0018808", "C0039070"
# "PE" names two concepts. Each sense is tied by a vocabulary relation to the company it keeps:
# a pulmonary embolism is related to deep vein thrombosis and diagnosed by CT pulmonary angiography;
# a heart murmur is diagnosed by physical examination. Syncope is related to neither.
TINY = Vocabulary(
    concepts=(
        Concept(id=EMBOLISM, name="Pulmonary embolism", abbreviations=("PE",)),
        Concept(id=EXAM, name="Physical examination", synonyms=("examination",), abbreviations=("PE",)),
        Concept(id=DVT, name="Deep vein thrombosis", abbreviations=("DVT",)),
        Concept(
            id=CTPA, name="CT pulmonary angiogram", synonyms=("CT pulmonary angiography",), abbreviations=("CTPA",)
        ),
        Concept(id=MURMUR, name="Heart murmur", synonyms=("systolic murmur", "murmur")),
        Concept(id=SYNCOPE, name="Syncope", synonyms=("fainting",)),
    ),
    relations=(
        Relation(source=EMBOLISM, type="related_to", target=DVT),
        Relation(source=EMBOLISM, type="diagnosed_by", target=CTPA),
        Relation(source=MURMUR, type="diagnosed_by", target=EXAM),
    ),
)
GRAPH = KnowledgeGraph.build(TINY, [])
EMBOLISM_TEXT = "PE with DVT on CT pulmonary angiogram"
EXAM_TEXT = "PE showed a systolic murmur"


def senses(linker: ConceptLinker, text: str, form: str = "PE") -> list[tuple[str, tuple[str, ...]]]:
    return [(m.concept_id, m.alternatives) for m in linker.link(text) if m.text == form]


def test_without_context_source_every_sense_is_kept():
    assert senses(ConceptLinker(TINY.concepts), EMBOLISM_TEXT) == [(EMBOLISM, ()), (EXAM, ())]


def test_graph_relations_choose_the_sense_that_fits_the_context():
    linker = ConceptLinker(TINY.concepts, graph=GRAPH)
    assert senses(linker, EMBOLISM_TEXT) == [(EMBOLISM, (EXAM,))]
    assert senses(linker, EXAM_TEXT) == [(EXAM, (EMBOLISM,))]
    # The unambiguous mentions are untouched.
    assert [m.concept_id for m in linker.link(EMBOLISM_TEXT)][1:] == [DVT, CTPA]


def test_no_evidence_or_a_tie_keeps_every_sense():
    linker = ConceptLinker(TINY.concepts, graph=GRAPH)
    assert senses(linker, "PE") == [(EMBOLISM, ()), (EXAM, ())]
    assert senses(linker, "PE after fainting") == [(EMBOLISM, ()), (EXAM, ())]  # syncope: related to neither
    assert senses(linker, "PE with DVT and a murmur") == [(EMBOLISM, ()), (EXAM, ())]  # one relation each


def test_a_sense_spelled_out_in_the_text_wins():
    linker = ConceptLinker(TINY.concepts, graph=GRAPH)
    assert senses(linker, "Pulmonary embolism (PE) and a murmur") == [(EMBOLISM, (EXAM,))]


def test_context_score_callable_takes_precedence_over_the_graph():
    pmi = {(EMBOLISM, SYNCOPE): 1.5, (EXAM, SYNCOPE): 0.2}

    def cooccurrence(candidate: str, context: set[str]) -> float:
        return sum(pmi.get((candidate, other), 0.0) for other in context)

    linker = ConceptLinker(TINY.concepts, graph=GRAPH, context_score=cooccurrence)
    assert senses(linker, "PE after fainting") == [(EMBOLISM, (EXAM,))]


def test_graph_cooccurrence_scores_work_as_context_score():
    # Chunks where syncope comes with pulmonary embolism and murmurs with examinations: PMI > 0.
    chunks = [[EMBOLISM, SYNCOPE]] * 3 + [[EXAM, MURMUR]] * 3 + [[DVT]] * 4
    graph = KnowledgeGraph.build(TINY, chunks)
    linker = ConceptLinker(TINY.concepts, context_score=graph.context_score)
    assert senses(linker, "PE after fainting") == [(EMBOLISM, (EXAM,))]


def test_disambiguator_unit():
    choose = AbbreviationDisambiguator(relation_overlap(GRAPH)).choose
    assert choose([EMBOLISM], {DVT}) is None  # nothing to choose
    choice = choose([EMBOLISM, EXAM], {DVT, CTPA})
    assert choice is not None and choice.chosen == EMBOLISM and choice.scores == {EMBOLISM: 2.0, EXAM: 0.0}
    with pytest.raises(ValueError, match="min_score"):
        AbbreviationDisambiguator(relation_overlap(GRAPH), min_score=-1)


# The real demo vocabulary, with two extra senses so that "MI" and "AF" are ambiguous as in practice.
DEMO = load_vocabulary(REPO / "corpus" / "demo" / "vocabulary.yaml")
MITRAL = Concept(
    id="C0026266", name="Mitral valve insufficiency", synonyms=("mitral regurgitation",), abbreviations=("MI",)
)
AMNIOTIC = Concept(id="C0002630", name="Amniotic fluid", abbreviations=("AF",))
AMBIGUOUS_DEMO = Vocabulary(
    concepts=(*DEMO.concepts, MITRAL, AMNIOTIC),
    relations=(*DEMO.relations, Relation(source=MITRAL.id, type="diagnosed_by", target="C0013516")),
)


@pytest.mark.parametrize(
    "text, form, expected",
    [
        ("New AF on amiodarone with a CHA2DS2-VASc score of 3", "AF", "C0004238"),
        ("afib anticoagulation with apixaban", "afib", "C0004238"),
        ("CAP treated with amoxicillin in adults", "CAP", "CLINQA:cap"),
        ("Suspected DVT: D-dimer and compression ultrasound", "DVT", "C0149871"),
        ("History of MI with chest pain and a raised troponin", "MI", "C0027051"),
    ],
)
def test_demo_vocabulary_links_clinical_abbreviations(text, form, expected):
    plain = ConceptLinker(DEMO.concepts)
    assert [m.concept_id for m in plain.link(text) if m.text == form] == [expected]
    resolved = ConceptLinker(AMBIGUOUS_DEMO.concepts, graph=KnowledgeGraph.build(AMBIGUOUS_DEMO, []))
    assert [m.concept_id for m in resolved.link(text) if m.text == form] == [expected]


def test_demo_vocabulary_mi_follows_its_context():
    linker = ConceptLinker(AMBIGUOUS_DEMO.concepts, graph=KnowledgeGraph.build(AMBIGUOUS_DEMO, []))
    assert senses(linker, "MI with chest pain and a raised troponin", "MI") == [("C0027051", (MITRAL.id,))]
    assert senses(linker, "Severe MI on echocardiography", "MI") == [(MITRAL.id, ("C0027051",))]
    assert senses(linker, "the cap of the bottle", "cap") == []  # word-like abbreviations keep their case

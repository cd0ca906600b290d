"""Query rewriting on the demo vocabulary: abbreviations expand to the right concepts in clinical
context, and an ambiguous one ("MS") resolves differently in different contexts."""

import pytest

from app.config import RewriteSettings
from app.pipeline.rewrite import QueryRewriter
from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker
from knowledge.vocabulary import load_vocabulary
from tests.helpers import REPO

pytestmark = pytest.mark.unit

AFIB, CAP, DVT, MI = "C0004238", "CLINQA:cap", "C0149871", "C0027051"
MITRAL_STENOSIS, MULTIPLE_SCLEROSIS = "C0026269", "C0026769"


@pytest.fixture(scope="module")
def rewriter() -> QueryRewriter:
    vocabulary = load_vocabulary(REPO / "corpus" / "demo" / "vocabulary.yaml")
    graph = KnowledgeGraph.build(vocabulary, [])
    linker = ConceptLinker(vocabulary.concepts, context_score=graph.context_score)
    return QueryRewriter(RewriteSettings(), linker, graph)


@pytest.mark.parametrize(
    ("question", "form", "concept", "long_form"),
    [
        ("Which anticoagulant for afib in a 78-year-old?", "afib", AFIB, "Atrial fibrillation"),
        ("AF with a CHA2DS2-VASc score of 2: start a DOAC?", "AF", AFIB, "Atrial fibrillation"),
        ("Empirical antibiotics for CAP with a CURB-65 of 3", "CAP", CAP, "Community-acquired pneumonia"),
        ("How long to anticoagulate a provoked DVT?", "DVT", DVT, "Deep vein thrombosis"),
        ("Statin dose after an MI", "MI", MI, "Myocardial infarction"),
    ],
)
def test_abbreviations_expand_to_their_concepts(rewriter, question, form, concept, long_form):
    query = rewriter.run(question)
    found = [c for c in query.concepts if c.matched_text == form]
    assert [c.id for c in found] == [concept]
    assert f"{form} ({long_form})" in query.rewritten
    assert long_form in query.expansions
    assert long_form.lower() in query.bm25_text.lower()


def test_an_ambiguous_abbreviation_resolves_from_its_context(rewriter):
    valve = rewriter.run("MS and AF: warfarin or a DOAC?")
    nerve = rewriter.run("Screening for depression in MS")
    ms_valve = [c for c in valve.concepts if c.matched_text == "MS"]
    ms_nerve = [c for c in nerve.concepts if c.matched_text == "MS"]
    assert [(c.id, c.alternatives) for c in ms_valve] == [(MITRAL_STENOSIS, (MULTIPLE_SCLEROSIS,))]
    assert [(c.id, c.alternatives) for c in ms_nerve] == [(MULTIPLE_SCLEROSIS, (MITRAL_STENOSIS,))]
    assert valve.rewritten.startswith("MS (Mitral valve stenosis)")
    assert nerve.rewritten.endswith("MS (Multiple sclerosis)")


def test_without_context_every_sense_is_kept_and_shown(rewriter):
    query = rewriter.run("MS")
    assert {c.id for c in query.concepts} == {MITRAL_STENOSIS, MULTIPLE_SCLEROSIS}
    assert query.rewritten in (
        "MS (Mitral valve stenosis or Multiple sclerosis)",
        "MS (Multiple sclerosis or Mitral valve stenosis)",
    )


def test_negated_concepts_are_marked(rewriter):
    query = rewriter.run("Antibiotics for cough with no evidence of pneumonia")
    assert [(c.matched_text, c.negated) for c in query.concepts if c.matched_text == "pneumonia"] == [
        ("pneumonia", True)
    ]

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from knowledge.graph import KnowledgeGraph
from knowledge.linker import TOLERANT_SCORE, ConceptLinker, Mention, SpellingCorrector, within_one_edit
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
    Concept(id="C0020538", name="Hypertension", abbreviations=("HTN",)),
    Concept(id="C0020649", name="Hypotension"),
    Concept(id="C0032285", name="Pneumonia"),
    Concept(id="C0360714", name="Statins", synonyms=("statin",)),
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


def test_mentions_carry_defaults_for_the_new_fields():
    (m,) = ConceptLinker(CONCEPTS).link("COPD")
    assert m == Mention("C0024117", 0, 4, "COPD", "abbreviation")
    assert (m.negated, m.score, m.tolerant, m.alternatives) == (False, 1.0, False, ())


def tolerant(text, **kwargs):
    return [
        (m.concept_id, m.text, m.tolerant, m.score) for m in ConceptLinker(CONCEPTS, tolerant=True, **kwargs).link(text)
    ]


def test_tolerant_matching_corrects_one_edit_in_long_words():
    assert tolerant("atrial fibrilation") == [("C0004238", "atrial fibrilation", True, TOLERANT_SCORE)]
    assert tolerant("hypertenstion") == [("C0020538", "hypertenstion", True, TOLERANT_SCORE)]
    assert tolerant("Pnuemonia and COPD") == [
        ("C0032285", "Pnuemonia", True, TOLERANT_SCORE),
        ("C0024117", "COPD", False, 1.0),
    ]
    assert ids("atrial fibrilation hypertenstion pnuemonia") == []  # off unless asked for


def test_tolerant_matching_stays_away_from_short_words_numbers_and_ambiguity():
    assert tolerant("afibb or COPDD") == []  # shorter than six letters
    assert tolerant("hypetension") == []  # one edit from both hypertension and hypotension
    assert tolerant("fibrilation") == []  # the corrected word alone completes no term
    assert tolerant("Kypertension or hypertensiom") == []  # first letter; last letter alone (morphology)
    corrector = SpellingCorrector(["1234567", "warfarin"])
    assert corrector.correct("1234568") is None and corrector.correct("warfarn") == "warfarin"


def test_known_words_are_never_corrected():
    assert tolerant("station") == [("C0360714", "station", True, TOLERANT_SCORE)]  # why a lexicon helps
    assert tolerant("station", known_words=["station"]) == []


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("fibrilation", "fibrillation", True),
        ("pnuemonia", "pneumonia", True),
        ("abc", "abc", True),
        ("hypertension", "hypotension", False),
        ("abcd", "badc", False),
        ("xab", "abx", False),
    ],
)
def test_within_one_edit(a, b, expected):
    assert within_one_edit(a, b) is expected and within_one_edit(b, a) is expected


def _reference_link(text):
    """The linker's original algorithm (every length at every position), the contract for the trie."""
    import re

    from knowledge.linker import _case_sensitive, _normalise

    entries = {}
    for c in CONCEPTS:
        forms = [(c.name, "name")] + [(s, "synonym") for s in c.synonyms]
        forms += [(a, "abbreviation") for a in c.abbreviations]
        for form, via in forms:
            words = tuple(re.findall(r"[A-Za-z0-9]+", form))
            exact = words if via == "abbreviation" and _case_sensitive(form) else None
            bucket = entries.setdefault(tuple(map(_normalise, words)), [])
            if not any(e[0] == c.id and e[2] == exact for e in bucket):
                bucket.append((c.id, via, exact))
    words = list(re.finditer(r"[A-Za-z0-9]+", text))
    norm = [_normalise(m.group()) for m in words]
    out, i = [], 0
    while i < len(words):
        matched = 0
        for n in range(min(8, len(words) - i), 0, -1):
            written = tuple(m.group() for m in words[i : i + n])
            hits = [e for e in entries.get(tuple(norm[i : i + n]), []) if e[2] is None or e[2] == written]
            if hits:
                start, end = words[i].start(), words[i + n - 1].end()
                out += list(dict.fromkeys((cid, start, end, via) for cid, via, _ in hits))
                matched = n
                break
        i += matched or 1
    return out


VOCAB_WORDS = [
    "atrial",
    "Fibrillation",
    "AF",
    "af",
    "COPD",
    "copd",
    "type",
    "2",
    "diabetes",
    "mellitus",
    "ACE",
    "inhibitors",
    "cap",
    "CAP",
    "a-fib",
    "afib",
    "the",
    "with",
    "of",
    "Pneumonia",
    "community-acquired",
]


@given(st.lists(st.sampled_from(VOCAB_WORDS), max_size=12), st.sampled_from([" ", ", ", ". ", " - "]))
def test_trie_matches_the_original_algorithm(words, sep):
    text = sep.join(words)
    got = [(m.concept_id, m.start, m.end, m.via) for m in ConceptLinker(CONCEPTS).link(text)]
    assert got == _reference_link(text)


def test_negation_is_marked_on_mentions():
    mentions = ConceptLinker(CONCEPTS).link("No evidence of pneumonia, but COPD")
    assert [(m.text, m.negated) for m in mentions] == [("pneumonia", True), ("COPD", False)]

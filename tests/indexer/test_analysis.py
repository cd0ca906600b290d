import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.analysis import Analyzer, AnalyzerConfig, split_sentences

pytestmark = pytest.mark.unit


def test_analyzer_stems_and_drops_stop_words():
    tokens = Analyzer().tokens("What is the first-line treatment for Hypertension in adults?")
    assert tokens == ["first", "line", "treatment", "hypertens", "adult"]


def test_analyzer_keeps_negation_and_numbers():
    assert Analyzer().tokens("No aspirin; 75 mg") == ["no", "aspirin", "75", "mg"]


def test_analyzer_rejects_unknown_stopword_list():
    with pytest.raises(ValueError, match="stopword"):
        Analyzer(AnalyzerConfig(stopwords="klingon"))


def test_analyzer_empty_input():
    assert Analyzer().tokens("") == []


def texts(spans, text):
    return [text[s.start : s.end] for s in spans]


def test_split_sentences_basic_and_abbreviations():
    text = "Give 2.5 mg daily, e.g. ramipril. Check eGFR at 2 weeks. Dr. Smith agrees!"
    assert texts(split_sentences(text), text) == [
        "Give 2.5 mg daily, e.g. ramipril.",
        "Check eGFR at 2 weeks.",
        "Dr. Smith agrees!",
    ]


def test_split_sentences_after_reference_markers_and_units():
    text = (
        "Survival was 50%.[[8](#cit/section_1.8)] However, the index\nmattered.[3, 4] Urate fell below 360 µmol/l. "
        "It stayed there."
    )
    assert texts(split_sentences(text), text) == [
        "Survival was 50%.[[8](#cit/section_1.8)]",
        "However, the index\nmattered.[3, 4]",
        "Urate fell below 360 µmol/l.",
        "It stayed there.",
    ]


def test_split_sentences_bullets_are_units_without_markers():
    text = "Options:\n\n- First option here.\n- Second option\n  continues here.\n\nAfter list."
    assert texts(split_sentences(text), text) == [
        "Options:",
        "First option here.",
        "Second option\n  continues here.",
        "After list.",
    ]


def test_split_sentences_empty():
    assert split_sentences("") == []
    assert split_sentences("  \n\n ") == []


@given(st.text(alphabet=st.sampled_from(list("ab. \n-1A?!")), max_size=200))
def test_split_sentences_spans_are_ordered_trimmed_and_in_bounds(text):
    prev_end = 0
    for span in split_sentences(text):
        assert prev_end <= span.start < span.end <= len(text)
        piece = text[span.start : span.end]
        assert piece == piece.strip() and piece
        prev_end = span.end

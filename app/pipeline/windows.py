"""The best-matching window of a chunk: what the cross-encoder reads instead of the whole chunk.

A cross-encoder's cost grows with the tokens it reads; most of a 200-token chunk is context around the
few words that match the question. `best_window` keeps the `budget` tokens around the question's strongest
match: among the windows of whole words that fit the budget and contain the strongest-matching word, the
one with the most matched weight (ties: the earliest). A chunk that fits the budget is kept whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_WORD_RE = re.compile(r"\S+")


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    tokens: int  # tokenizer tokens of text[start:end], no special tokens


def best_window(
    text: str,
    query_terms: set[str],
    budget: int,
    token_offsets: Callable[[str], list[tuple[int, int]]],
    terms_of: Callable[[str], list[str]],
    weight: Callable[[str], float] = lambda term: 1.0,
) -> Window:
    """The character span of `text` to rerank.

    `token_offsets(text)` gives the tokenizer's (start, end) character offsets, no special tokens (a fast
    tokenizer's `return_offsets_mapping`); `terms_of(word)` normalises a word the way `query_terms` were
    (the BM25 analyzer: lower-cased, stop words dropped, stemmed); `weight(term)` ranks matches (IDF).
    Windows are made of whole whitespace-separated words, so with a WordPiece/BPE tokenizer (which splits
    on whitespace first) the substring re-tokenises to exactly the counted tokens.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1 token, got {budget}")
    words = [(m.start(), m.end()) for m in _WORD_RE.finditer(text)]
    if not words:
        return Window(0, 0, 0)
    counts = _tokens_per_word(words, token_offsets(text))
    total = sum(counts)
    if total <= budget:
        return Window(words[0][0], words[-1][1], total)
    gains = [sum(weight(t) for t in terms_of(text[s:e]) if t in query_terms) for s, e in words]
    strongest = max(range(len(words)), key=lambda i: (gains[i], -i))
    if gains[strongest] <= 0:
        return _prefix(words, counts, budget)
    best: tuple[float, int, int, int] | None = None  # (-gain, first word, last word, tokens)
    # Two pointers over windows [i, j] that contain `strongest` and fit the budget.
    j, tokens, gain = strongest, counts[strongest], gains[strongest]
    if tokens > budget:  # one word longer than the budget: the window is that word's leading tokens
        return _inside_word(words[strongest], token_offsets(text), budget)
    i = strongest
    while i > 0 and tokens + counts[i - 1] <= budget:
        i -= 1
        tokens += counts[i]
        gain += gains[i]
    while True:
        while j + 1 < len(words) and tokens + counts[j + 1] <= budget:
            j += 1
            tokens += counts[j]
            gain += gains[j]
        candidate = (-gain, i, j, tokens)
        if best is None or candidate < best:
            best = candidate
        if i == strongest:
            break
        tokens -= counts[i]
        gain -= gains[i]
        i += 1
    _, i, j, tokens = best
    return Window(words[i][0], words[j][1], tokens)


def _tokens_per_word(words: list[tuple[int, int]], offsets: list[tuple[int, int]]) -> list[int]:
    counts = [0] * len(words)
    w = 0
    for start, end in offsets:
        if end <= start:
            continue
        while w < len(words) - 1 and start >= words[w][1]:
            w += 1
        counts[w] += 1
    return [max(c, 1) for c in counts]


def _prefix(words: list[tuple[int, int]], counts: list[int], budget: int) -> Window:
    """No word matches: the chunk's opening words (where PDQ sections state their subject)."""
    tokens, j = counts[0], 0
    if tokens > budget:
        return Window(words[0][0], words[0][0], 0)
    while j + 1 < len(words) and tokens + counts[j + 1] <= budget:
        j += 1
        tokens += counts[j]
    return Window(words[0][0], words[j][1], tokens)


def _inside_word(word: tuple[int, int], offsets: list[tuple[int, int]], budget: int) -> Window:
    inside = [(s, e) for s, e in offsets if s >= word[0] and e <= word[1] and e > s][:budget]
    return Window(inside[0][0], inside[-1][1], len(inside)) if inside else Window(word[0], word[0], 0)

"""NegEx-style negation scopes (Chapman et al., 2001): which stretches of a text a negation covers.

A trigger phrase ("no", "denies", "without", "negative for", "ruled out") negates the next few words,
a post-trigger ("was ruled out", "is unlikely") the previous few. A scope never crosses a sentence
boundary (. ! ? ; a line break, a spaced dash between list items) or a conjunction that turns the
sentence ("but", "however", "although", ...). Pseudo-triggers ("no change", "not only",
"cannot be ruled out") look like triggers but negate nothing, so they are matched first and skipped.

The trigger lists are deliberately conservative for reference text rather than clinical notes: bare
"not" is no trigger ("aspirin is not recommended in AF" does not say AF is absent); only "not" forms
that deny a finding ("does not have", "did not show") are.

Matching works on words, like the linker, so that "up to six words" means words and a whole document
costs one pass over the words that can start a phrase.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

Direction = Literal["forward", "backward"]
PhraseKind = Literal["pre", "post", "pseudo", "terminator"]

MAX_SCOPE_WORDS = 6
"""How many words a trigger reaches: NegEx uses five or six; longer scopes mostly add false negations."""

PRE_TRIGGERS: tuple[str, ...] = (
    "no",
    "without",
    "denies",
    "denied",
    "deny",
    "denying",
    "absence of",
    "absent",
    "free of",
    "negative for",
    "ruled out",
    "rules out",
    "excluded",
    "never",
    "never had",
    "never developed",
    "neither",
    "nor",
    "not have",
    "not had",
    "not has",
    "not show",
    "not reveal",
    "not demonstrate",
    "not exhibit",
    "not develop",
    "not experience",
    "not complain of",
    "not associated with",
    "not appear to have",
    "fails to reveal",
    "failed to reveal",
    "fails to show",
    "failed to show",
    "unremarkable for",
)
POST_TRIGGERS: tuple[str, ...] = (
    "was ruled out",
    "were ruled out",
    "is ruled out",
    "are ruled out",
    "been ruled out",
    "was excluded",
    "were excluded",
    "is excluded",
    "are excluded",
    "been excluded",
    "was negative",
    "were negative",
    "is negative",
    "are negative",
    "was absent",
    "were absent",
    "is absent",
    "are absent",
    "is unlikely",
    "was unlikely",
    "unlikely",
    "not seen",
    "not detected",
    "not found",
    "not identified",
    "not present",
)
PSEUDO_TRIGGERS: tuple[str, ...] = (
    "no increase",
    "no change",
    "no significant change",
    "no interval change",
    "no further",
    "no longer required",
    "no one",
    "no matter",
    "no doubt",
    "not only",
    "not necessarily",
    "not certain",
    "not clear",
    "not known",
    "whether or not",
    "gram negative",
    "without difficulty",
    "not rule out",
    "not ruled out",
    "not be ruled out",
    "not been ruled out",
    "cannot rule out",
    "cannot be ruled out",
    "cannot exclude",
    "cannot be excluded",
    "not excluded",
    "not be excluded",
    # Reference text says what does not exist for a disease, not that the disease is absent:
    # "there is no cure for dermatomyositis", "no standard staging system for astrocytoma".
    "no cure",
    "no known cure",
    "no treatment",
    "no specific treatment",
    "no effective treatment",
    "no approved",
    "no proven",
    "no standard",
    "no single test",
    "no specific test",
    "no specific medicine",
    "no specific",
    "no cures",
    "no single",
    "no vaccine",
    "no vaccines",
    "no increased risk",
    "not have a higher risk",
    "no known cause",
    "no identifiable cause",
    "no gene",
    "no genes",
    "no mutation",
    "no mutations",
    # "without treatment, chronic hepatitis C can cause...": the treatment is absent, not the disease.
    "without treatment",
    "without medical attention",
    "with or without",
)
TERMINATORS: tuple[str, ...] = (
    "but",
    "however",
    "although",
    "though",
    "yet",
    "except",
    "apart from",
    "aside from",
    "nevertheless",
    "whereas",
    "while",
    "secondary to",
)
# Pre-triggers that, with nothing after them in the sentence, look back instead: "PE ruled out."
_BACKWARD_IF_LAST = frozenset({"ruled out", "denied", "absent", "excluded"})

WORD_SPLIT_RE = re.compile(r"([A-Za-z0-9]+)")
"""Splits a text into gap, word, gap, ..., gap: the tokenisation the linker and the negation share."""
# Between two words, a sentence ends at . ! ? ; (perhaps with closing quotes or brackets) before white
# space, at a line break, or at a spaced dash ("item - item").
_BOUNDARY_RE = re.compile(r"[.!?;][\"')\]]*\s|\n|\s-\s")
# Words inside a phrase are separated by spaces or a hyphen ("gram-negative"), nothing else.
_PHRASE_GAP_RE = re.compile(r"[ \t-]+")
# A dot after these ends no sentence: "e.g. fever", "Dr. Smith", "et al. found".
_NO_STOP_BEFORE_DOT = frozenset({"e", "g", "i", "vs", "dr", "mr", "mrs", "ms", "al", "fig", "approx", "st"})


def _phrase_trie() -> dict[str, dict]:
    """Word trie of every phrase; a node's "" key holds (phrase, kind) where a phrase ends there."""
    root: dict[str, dict] = {}
    lists: list[tuple[tuple[str, ...], PhraseKind]] = [
        (PRE_TRIGGERS, "pre"),
        (POST_TRIGGERS, "post"),
        (PSEUDO_TRIGGERS, "pseudo"),
        (TERMINATORS, "terminator"),
    ]
    for phrases, kind in lists:
        for phrase in phrases:
            node = root
            for word in phrase.split():
                node = node.setdefault(word, {})
            node[""] = (phrase, kind)  # type: ignore[assignment]
    return root


_PHRASES = _phrase_trie()


@dataclass(frozen=True)
class NegationScope:
    """Characters [start, end) that a trigger negates."""

    start: int
    end: int
    trigger: str
    direction: Direction


@dataclass(frozen=True)
class _Phrase:
    first: int  # word indices, inclusive
    last: int
    phrase: str
    kind: PhraseKind


def _phrases(lower: list[str], gaps: list[str], starts: list[int]) -> list[_Phrase]:
    """Longest phrase at each of the words that can start one, left to right, without overlaps."""
    out: list[_Phrase] = []
    free = 0
    for i in starts:
        if i < free:
            continue
        node, found, j = _PHRASES, None, i
        while j < len(lower) and (child := node.get(lower[j])) is not None:
            if j > i and not _PHRASE_GAP_RE.fullmatch(gaps[j]):
                break
            node = child
            if "" in node:
                found = (j, *node[""])
            j += 1
        if found is not None:
            out.append(_Phrase(i, found[0], found[1], found[2]))
            free = found[0] + 1
    return out


def _cuts(text: str, lower: list[str], gaps: list[str], starts: list[int], phrases: list[_Phrase]) -> list[int]:
    """Sorted word indices k where a scope must not reach across (from word k-1 to word k):
    sentence boundaries, and both sides of each terminating conjunction. `starts` are word offsets."""
    cuts = [p for t in phrases if t.kind == "terminator" for p in (t.first, t.last + 1)]
    # Boundaries are found in the whole text at C speed, then placed before the word that follows them.
    marked = {bisect_left(starts, m.start()) for m in _BOUNDARY_RE.finditer(text)}
    cuts += [
        k
        for k in marked
        if 0 < k < len(lower) and not (gaps[k].strip(" \t") == "." and lower[k - 1] in _NO_STOP_BEFORE_DOT)
    ]
    return sorted(cuts)


def _scope_words(phrase: _Phrase, cuts: list[int], n_words: int) -> tuple[int, int, Direction] | None:
    """(first, last, direction) of the words a trigger negates, or None when it reaches none."""
    after = cuts[i] if (i := bisect_right(cuts, phrase.last)) < len(cuts) else n_words
    before = cuts[i - 1] if (i := bisect_right(cuts, phrase.first)) > 0 else 0
    if phrase.kind == "pre":
        last = min(phrase.last + MAX_SCOPE_WORDS, after - 1)
        if last > phrase.last:
            return phrase.last + 1, last, "forward"
        if phrase.phrase not in _BACKWARD_IF_LAST:
            return None
    first = max(phrase.first - MAX_SCOPE_WORDS, before)
    return (first, phrase.first - 1, "backward") if first < phrase.first else None


def find_scopes(text: str, pieces: list[str] | None = None) -> list[NegationScope]:
    """Every negation scope in the text, in trigger order. `pieces` is the text already split by
    `WORD_SPLIT_RE` (gap, word, gap, ..., gap), as the linker has it; passing it saves a second split."""
    pieces = WORD_SPLIT_RE.split(text) if pieces is None else pieces
    lower = list(map(str.lower, pieces[1::2]))
    starts = [i for i, w in enumerate(lower) if w in _PHRASES]
    if not starts:
        return []
    gaps = pieces[0::2]  # gaps[k] comes just before word k
    phrases = _phrases(lower, gaps, starts)
    triggers = [p for p in phrases if p.kind in ("pre", "post")]
    if not triggers:
        return []
    offsets = [0, *accumulate(map(len, pieces))]  # word k spans offsets[2k+1]..offsets[2k+2]
    cuts = _cuts(text, lower, gaps, offsets[1::2], phrases)
    scopes: list[NegationScope] = []
    for t in triggers:
        words = _scope_words(t, cuts, len(lower))
        if words is not None:
            first, last, direction = words
            scopes.append(NegationScope(offsets[2 * first + 1], offsets[2 * last + 2], t.phrase, direction))
    return scopes


def is_negated(scopes: list[NegationScope], start: int, end: int) -> bool:
    """Whether the span [start, end) overlaps any negation scope."""
    return any(s.start < end and start < s.end for s in scopes)


def negated_flags(scopes: list[NegationScope], spans: list[tuple[int, int]]) -> list[bool]:
    """is_negated for many spans at once: merge the scopes, then one binary search per span."""
    merged: list[list[int]] = []
    for s in sorted(scopes, key=lambda s: s.start):
        if merged and s.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], s.end)
        else:
            merged.append([s.start, s.end])
    ends = [e for _, e in merged]
    flags = []
    for start, end in spans:
        i = bisect_left(ends, start + 1)  # first merged scope ending after the span starts
        flags.append(i < len(merged) and merged[i][0] < end)
    return flags

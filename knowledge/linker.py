"""Dictionary concept linker: longest match over normalised word sequences.

Surface forms come from each concept's name, synonyms and abbreviations. Short or word-like
abbreviations ("AF", "CAP", "PE") only match in their written case, so "cap" or "pe" in running text
are not taken for concepts; longer distinctive ones ("COPD", "HTN") match in any case.

Matching walks a token trie, so each position costs one dictionary lookup per matched word rather than
one per possible term length; it stays fast with hundreds of thousands of surface forms. On top of the
exact match, three optional steps:

- tolerant matching: a long word that is in no term may be one edit (insertion, deletion, substitution
  or swap of neighbours) from exactly one vocabulary word, found with a symmetric-delete index
  (SymSpell); it is corrected only where the correction completes a known term ("atrial fibrilation");
- negation: mentions inside a NegEx-style scope ("no evidence of sepsis") are marked `negated`;
- disambiguation: a form naming several concepts ("PE") is resolved from the other concepts of the
  text, through a `context_score` callable or the relations of a KnowledgeGraph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import TYPE_CHECKING, Literal

from knowledge.disambiguation import AbbreviationDisambiguator, ContextScore, relation_overlap
from knowledge.negation import WORD_SPLIT_RE, find_scopes, negated_flags
from knowledge.schema import Concept

if TYPE_CHECKING:
    from knowledge.graph import KnowledgeGraph

_WORD_RE = re.compile(r"[A-Za-z0-9]+")
# Abbreviations whose lower-case form is an everyday word keep their written case.
_COMMON_WORDS = frozenset(
    """ace aid aids all am an arm art as at audit bag bed can cap cat cold dig dip doc ear fat fever fit gad
    gap gas hip hug ice it lad lip map met mid mood on or pack pad pain pal pan pat per pet pin pro rest rub
    sad sat sob sun tab tap tin top us van via war was wet news""".split()
)

MatchKind = Literal["name", "synonym", "abbreviation"]

TOLERANT_MIN_LENGTH = 6
"""Shortest word (in the text and in the vocabulary) that tolerant matching may correct: one edit in a
shorter word too often makes another real word."""
TOLERANT_SCORE = 0.8
"""Score of a mention found through a corrected word; exact mentions score 1.0."""
_CACHE_LIMIT = 200_000  # distinct words remembered between calls before the caches start afresh
_TERMINAL = ""  # trie key of a node's entries: tokens are never empty, so it cannot clash with a word


@dataclass(frozen=True)
class Mention:
    """A concept found in a text at characters [start, end).

    `score` is 1.0 for an exact match and TOLERANT_SCORE where a misspelt word was corrected
    (`tolerant`); `negated` is set inside a negation scope; `alternatives` lists the other concepts the
    same words could name when the linker chose this one from context.
    """

    concept_id: str
    start: int
    end: int
    text: str
    via: MatchKind
    negated: bool = False
    score: float = 1.0
    tolerant: bool = False
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry:
    concept_id: str
    via: MatchKind
    exact_words: tuple[str, ...] | None  # set when the text must match case-exactly


@dataclass(frozen=True)
class _Match:
    """One matched span: word range, the concepts it may name, whether a word was corrected."""

    first: int
    last: int  # inclusive
    entries: tuple[_Entry, ...]
    tolerant: bool


def _normalise(word: str) -> str:
    word = word.lower()
    # Light plural folding, applied identically to terms and text: "inhibitors" ~ "inhibitor".
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _case_sensitive(abbreviation: str) -> bool:
    letters = re.sub(r"[^A-Za-z0-9]", "", abbreviation)
    return len(letters) < 3 or letters.lower() in _COMMON_WORDS


class _NormCache(dict[str, str]):
    """Raw word -> normalised word; `map(cache.__getitem__, words)` normalises a text at C speed."""

    def __missing__(self, word: str) -> str:
        norm = _normalise(word)
        self[word] = norm
        return norm


def _deletes(word: str) -> Iterator[str]:
    """Every string one deletion away from word."""
    return (word[:i] + word[i + 1 :] for i in range(len(word)))


def within_one_edit(a: str, b: str) -> bool:
    """Optimal string alignment distance <= 1: one insertion, deletion, substitution or adjacent swap."""
    return _edit_position(a, b) is not None or a == b


def _edit_position(a: str, b: str) -> int | None:
    """Where the single edit turning a into b happens (the first differing character), or None when
    the words are equal or more than one edit apart."""
    if a == b or abs(len(a) - len(b)) > 1:
        return None
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) != len(b):
        shorter, longer = (a, b) if len(a) < len(b) else (b, a)
        return i if longer[i + 1 :] == shorter[i:] else None
    swapped = a[i : i + 2] == b[i : i + 2][::-1] and a[i + 2 :] == b[i + 2 :]
    return i if a[i + 1 :] == b[i + 1 :] or swapped else None


def _plausible_typo(word: str, candidate: str) -> bool:
    """One edit that looks like a slip rather than a different word: typists rarely get the first
    letter wrong, and a change of the last letter alone is mostly morphology (smoked/smoker,
    hypoglycemic/hypoglycemia), not a typo. A swap of the last two letters still counts."""
    pos = _edit_position(word, candidate)
    if pos is None or pos == 0:
        return False
    last_only = pos == max(len(word), len(candidate)) - 1
    return not last_only


class SpellingCorrector:
    """Correct a word to the single vocabulary word one edit away (symmetric-delete index, SymSpell).

    `known_words` (a lexicon: the corpus vocabulary, an English word list) are never corrected: without
    one, a real word one edit from a term is taken for a typo (station -> statin, reflex -> reflux).
    """

    def __init__(
        self,
        vocabulary_words: Iterable[str],
        known_words: Iterable[str] = (),
        min_length: int = TOLERANT_MIN_LENGTH,
    ) -> None:
        if min_length < 2:
            raise ValueError(f"min_length must be >= 2, got {min_length}")
        self.min_length = min_length
        self._words = frozenset(w.lower() for w in vocabulary_words)
        lexicon = {w.lower() for w in known_words}
        # Words never corrected: the vocabulary's and the lexicon's, as written and plural-folded.
        self._stay = frozenset({*self._words, *lexicon, *map(_normalise, self._words | lexicon)})
        # Each long vocabulary word is filed under itself and under each of its one-deletion variants.
        self._index: dict[str, list[str]] = {}
        for word in self._words:
            if len(word) >= min_length and word.isalpha():
                for key in (word, *_deletes(word)):
                    self._index.setdefault(key, []).append(word)
        self._cache: dict[str, str | None] = {}

    def eligible(self, word: str) -> bool:
        """Long alphabetic words (lower case) in no term and no lexicon, also after plural folding:
        known words and numbers are never corrected."""
        if len(word) < self.min_length or not word.isalpha():
            return False
        return word not in self._stay and _normalise(word) not in self._stay

    def correct(self, word: str) -> str | None:
        """The vocabulary word one edit from `word` (both lower case, not plural-folded: typos are judged
        on real spellings), or None when there is none or more than one."""
        if word in self._cache:
            return self._cache[word]
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        found = None
        if self.eligible(word):
            near = {w for key in (word, *_deletes(word)) for w in self._index.get(key, ())}
            near = {w for w in near if within_one_edit(word, w)}
            # Ambiguity is judged before plausibility: a word near two terms is no reliable typo of either.
            found = near.pop() if len(near) == 1 else None
            if found is not None and not _plausible_typo(word, found):
                found = None
        self._cache[word] = found
        return found


class ConceptLinker:
    """Find concept mentions in text; built once from the vocabulary, then cheap per call."""

    def __init__(
        self,
        concepts: Iterable[Concept],
        graph: KnowledgeGraph | None = None,
        context_score: ContextScore | None = None,
        *,
        tolerant: bool = False,
        known_words: Iterable[str] = (),
        negation: bool = True,
    ) -> None:
        """`graph` or `context_score` turn on sense disambiguation (context_score wins when both are
        given); without either, an ambiguous span yields one mention per concept, as before.
        `tolerant` turns on one-edit spelling correction of words in neither the vocabulary nor
        `known_words` (see SpellingCorrector); `negation` marks negated mentions."""
        self._root: dict[str, dict] = {}
        self._norm = _NormCache()
        words: set[str] = set()
        for concept in concepts:
            for form, via in _forms(concept):
                written = tuple(_WORD_RE.findall(form))
                if written:
                    key = tuple(_normalise(w) for w in written)
                    exact = written if via == "abbreviation" and _case_sensitive(form) else None
                    self._add(key, _Entry(concept.id, via, exact))
                    words.update(w.lower() for w in written)
        self._corrector = SpellingCorrector(words, known_words) if tolerant else None
        self.negation = negation
        if context_score is None and graph is not None:
            context_score = relation_overlap(graph)
        self._disambiguator = AbbreviationDisambiguator(context_score) if context_score is not None else None

    def _add(self, key: tuple[str, ...], entry: _Entry) -> None:
        node = self._root
        for token in key:
            node = node.setdefault(token, {})
        bucket: list[_Entry] = node.setdefault(_TERMINAL, [])  # type: ignore[arg-type]
        if not any(e.concept_id == entry.concept_id and e.exact_words == entry.exact_words for e in bucket):
            bucket.append(entry)

    def link(self, text: str) -> list[Mention]:
        """Non-overlapping longest matches, left to right; an ambiguous span yields one mention per
        concept unless the context resolves it."""
        if len(self._norm) > _CACHE_LIMIT:
            self._norm.clear()
        # re.split keeps the separators, so word offsets are running sums of piece lengths.
        pieces = WORD_SPLIT_RE.split(text)
        words = pieces[1::2]
        offsets = [0, *accumulate(map(len, pieces))]
        norm = list(map(self._norm.__getitem__, words))
        matches = self._matches(words, norm)
        mentions = self._mentions(text, matches, offsets)
        if self.negation and mentions:
            scopes = find_scopes(text, pieces)
            if scopes:
                flags = negated_flags(scopes, [(m.start, m.end) for m in mentions])
                mentions = [replace(m, negated=True) if f else m for m, f in zip(mentions, flags, strict=True)]
        return mentions

    def _matches(self, words: list[str], norm: list[str]) -> list[_Match]:
        root, corrector = self._root, self._corrector
        # Only words that begin some term (perhaps once corrected) can start a match; finding them in
        # one comprehension keeps the per-word cost of ordinary text at a single dict lookup.
        if corrector is None:
            starts = [i for i, t in enumerate(norm) if t in root]
        else:
            # Corrections are looked up once per distinct word, not once per occurrence.
            shortest = corrector.min_length - 1  # a folded plural is one letter shorter than the word
            fixable = {w for w in set(words) if len(w) >= shortest and _corrected_in(root, corrector, w)}
            starts = [i for i, t in enumerate(norm) if t in root or words[i] in fixable]
        out: list[_Match] = []
        free = 0  # first word not inside an earlier match
        for i in starts:
            if i < free:
                continue
            match = self._longest(i, words, norm)
            if match is not None:
                out.append(match)
                free = match.last + 1
        return out

    def _longest(self, i: int, words: list[str], norm: list[str]) -> _Match | None:
        """The longest term starting at word i whose case rules the written words satisfy."""
        node: dict = self._root
        found: list[tuple[int, list[_Entry], bool]] = []  # (last word, entries, corrected so far)
        corrected = False
        j = i
        while j < len(norm):
            child = node.get(norm[j])
            if child is None and not corrected and self._corrector is not None:
                fixed = self._corrector.correct(words[j].lower())
                child = node.get(_normalise(fixed)) if fixed is not None else None
                corrected = child is not None
            if child is None:
                break
            node = child
            if _TERMINAL in node:
                found.append((j, node[_TERMINAL], corrected))
            j += 1
        for last, entries, tolerant in reversed(found):
            written = tuple(words[i : last + 1])
            hits = tuple(e for e in entries if e.exact_words is None or e.exact_words == written)
            if hits:
                return _Match(i, last, hits, tolerant)
        return None

    def _mentions(self, text: str, matches: list[_Match], offsets: list[int]) -> list[Mention]:
        context = {m.entries[0].concept_id for m in matches if len({e.concept_id for e in m.entries}) == 1}
        mentions: list[Mention] = []
        for m in matches:
            start, end = offsets[2 * m.first + 1], offsets[2 * m.last + 2]
            entries = _first_per_concept(m.entries)
            choice = None
            if len(entries) > 1 and self._disambiguator is not None:
                choice = self._disambiguator.choose([e.concept_id for e in entries], context)
            for e in entries:
                if choice is not None and e.concept_id != choice.chosen:
                    continue
                mentions.append(
                    Mention(
                        concept_id=e.concept_id,
                        start=start,
                        end=end,
                        text=text[start:end],
                        via=e.via,
                        score=TOLERANT_SCORE if m.tolerant else 1.0,
                        tolerant=m.tolerant,
                        alternatives=choice.alternatives if choice else (),
                    )
                )
        return mentions


def _first_per_concept(entries: tuple[_Entry, ...]) -> list[_Entry]:
    seen: set[str] = set()
    out: list[_Entry] = []
    for e in entries:
        if e.concept_id not in seen:
            seen.add(e.concept_id)
            out.append(e)
    return out


def _corrected_in(node: dict[str, dict], corrector: SpellingCorrector | None, word: str) -> bool:
    """Whether the word, corrected, is a child of the trie node (cheap: corrections are cached)."""
    if corrector is None:
        return False
    fixed = corrector.correct(word.lower())
    return fixed is not None and _normalise(fixed) in node


def _forms(concept: Concept) -> list[tuple[str, MatchKind]]:
    forms: list[tuple[str, MatchKind]] = [(concept.name, "name")]
    forms += [(s, "synonym") for s in concept.synonyms]
    forms += [(a, "abbreviation") for a in concept.abbreviations]
    return forms

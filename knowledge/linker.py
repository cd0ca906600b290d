"""Dictionary concept linker: longest match over normalised word sequences.

Surface forms come from each concept's name, synonyms and abbreviations. Short or word-like
abbreviations ("AF", "CAP", "PE") only match in their written case, so "cap" or "pe" in running text
are not taken for concepts; longer distinctive ones ("COPD", "HTN") match in any case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from knowledge.schema import Concept

_WORD_RE = re.compile(r"[A-Za-z0-9]+")
# Abbreviations whose lower-case form is an everyday word keep their written case.
_COMMON_WORDS = frozenset(
    """ace aid aids all am an arm art as at audit bag bed can cap cat cold dig dip doc ear fat fever fit gad
    gap gas hip hug ice it lad lip map met mid mood on or pack pad pain pal pan pat per pet pin pro rest rub
    sad sat sob sun tab tap tin top us van via war was wet news""".split()
)

MatchKind = Literal["name", "synonym", "abbreviation"]


@dataclass(frozen=True)
class Mention:
    concept_id: str
    start: int
    end: int
    text: str
    via: MatchKind


@dataclass(frozen=True)
class _Entry:
    concept_id: str
    via: MatchKind
    exact_words: tuple[str, ...] | None  # set when the text must match case-exactly


def _normalise(word: str) -> str:
    word = word.lower()
    # Light plural folding, applied identically to terms and text: "inhibitors" ~ "inhibitor".
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _case_sensitive(abbreviation: str) -> bool:
    letters = re.sub(r"[^A-Za-z0-9]", "", abbreviation)
    return len(letters) < 3 or letters.lower() in _COMMON_WORDS


class ConceptLinker:
    """Find concept mentions in text; cheap to build from a few thousand concepts."""

    def __init__(self, concepts: Iterable[Concept]) -> None:
        self._entries: dict[tuple[str, ...], list[_Entry]] = {}
        self._max_len = 1
        for concept in concepts:
            forms: list[tuple[str, MatchKind]] = [(concept.name, "name")]
            forms += [(s, "synonym") for s in concept.synonyms]
            forms += [(a, "abbreviation") for a in concept.abbreviations]
            for form, via in forms:
                words = tuple(_WORD_RE.findall(form))
                if not words:
                    continue
                key = tuple(_normalise(w) for w in words)
                exact = words if via == "abbreviation" and _case_sensitive(form) else None
                bucket = self._entries.setdefault(key, [])
                if not any(e.concept_id == concept.id and e.exact_words == exact for e in bucket):
                    bucket.append(_Entry(concept.id, via, exact))
                self._max_len = max(self._max_len, len(key))

    def link(self, text: str) -> list[Mention]:
        """Non-overlapping longest matches, left to right; an ambiguous span yields one mention per concept."""
        words = list(_WORD_RE.finditer(text))
        norm = [_normalise(m.group()) for m in words]
        mentions: list[Mention] = []
        i = 0
        while i < len(words):
            matched = 0
            for n in range(min(self._max_len, len(words) - i), 0, -1):
                entries = self._entries.get(tuple(norm[i : i + n]))
                if not entries:
                    continue
                written = tuple(m.group() for m in words[i : i + n])
                hits = [e for e in entries if e.exact_words is None or e.exact_words == written]
                if not hits:
                    continue
                start, end = words[i].start(), words[i + n - 1].end()
                seen: set[str] = set()
                for e in hits:
                    if e.concept_id not in seen:
                        seen.add(e.concept_id)
                        mentions.append(Mention(e.concept_id, start, end, text[start:end], e.via))
                matched = n
                break
            i += matched or 1
        return mentions

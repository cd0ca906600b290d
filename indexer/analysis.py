"""Text analysis shared by the indexer and the online pipeline.

The BM25 analyzer must be identical at index and query time, so both sides import it from here and
the manifest records its configuration. The sentence splitter returns character spans so that every
quoted sentence can be traced back to its exact offsets in a chunk.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

import Stemmer

# A small, clinical-aware stop list: keeps words such as "not", "no", "first", "line" and "with"
# out of it because they carry meaning in guideline questions ("no evidence of", "first-line").
STOPWORDS_EN: frozenset[str] = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "would",
        "you",
        "your",
    ]
)

_TOKEN_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class AnalyzerConfig:
    """What shapes BM25 tokens; recorded in the index manifest and checked when an index is loaded."""

    lowercase: bool = True
    stopwords: str = "clinqa-en-1"
    stemmer: str = "english"

    def as_dict(self) -> dict[str, str | bool]:
        return {"lowercase": self.lowercase, "stopwords": self.stopwords, "stemmer": self.stemmer}


class Analyzer:
    """Tokenise text for BM25: NFKC, lower-case, alphanumeric runs, stop words removed, Snowball stems."""

    def __init__(self, config: AnalyzerConfig | None = None) -> None:
        self.config = config or AnalyzerConfig()
        if self.config.stopwords != "clinqa-en-1":
            raise ValueError(f"unknown stopword list {self.config.stopwords!r}; expected 'clinqa-en-1'")

    @cached_property
    def _stemmer(self) -> Stemmer.Stemmer:
        return Stemmer.Stemmer(self.config.stemmer)

    def words(self, text: str) -> list[str]:
        """Normalised words before stop-word removal and stemming."""
        text = unicodedata.normalize("NFKC", text)
        if self.config.lowercase:
            text = text.lower()
        return _TOKEN_RE.findall(text)

    def tokens(self, text: str) -> list[str]:
        words = [w for w in self.words(text) if w not in STOPWORDS_EN]
        return self._stemmer.stemWords(words)

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]


# --- sentence splitting -----------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "vs",
        "etc",
        "approx",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "fig",
        "no",
        "st",
        "al",
        "ca",
        "cf",
        "resp",
        "min",
        "max",
        "mo",
        "yr",
        "yrs",
        "wk",
        "wks",
    ]
)
_BULLET_RE = re.compile(r"[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+")
# A sentence may end in reference markers: PDQ's Markdown links "[[3](#cit/section_1.3)]" or plain "[3, 4]".
_BOUNDARY_RE = re.compile(
    r"[.!?][\"')\]]*(?:\[\[[^\]\s]*\]\([^)\s]*\)\]|\[\d+(?:\s*[,–-]\s*\d+)*\])*(?=\s+[\"'(\[]?[A-Z0-9])"
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def trim_span(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the full stop at `dot` ends an abbreviation or an initial, not a sentence."""
    j = dot
    while j > 0 and (text[j - 1].isalpha() or text[j - 1] == "."):
        j -= 1
    word = text[j:dot].lower()
    if j > 0 and text[j - 1] == "/":
        return False  # the end of a unit ("360 µmol/l."), not an initial
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _split_paragraph(text: str, start: int, end: int) -> list[Span]:
    spans: list[Span] = []
    cursor = start
    for m in _BOUNDARY_RE.finditer(text, start, end):
        if text[m.start()] == "." and _is_abbreviation(text, m.start()):
            continue
        span = trim_span(text, cursor, m.end())
        if span:
            spans.append(span)
        cursor = m.end()
    span = trim_span(text, cursor, end)
    if span:
        spans.append(span)
    return spans


def split_sentences(text: str) -> list[Span]:
    """Split Markdown-ish text into sentence spans.

    Blank lines end paragraphs; each list item is its own unit (its bullet marker excluded from the
    span); inside a unit, a full stop, question or exclamation mark followed by whitespace and a
    capital or digit ends a sentence unless it closes a known abbreviation or an initial.
    Spans never overlap, are in order and are trimmed of surrounding whitespace.
    """
    spans: list[Span] = []
    unit_start: int | None = None
    pos = 0
    for line in text.splitlines(keepends=True):
        line_start, line_end = pos, pos + len(line)
        pos = line_end
        bullet = _BULLET_RE.match(line)
        blank = not line.strip()
        if (blank or bullet) and unit_start is not None:
            spans.extend(_split_paragraph(text, unit_start, line_start))
            unit_start = None
        if blank:
            continue
        if unit_start is None:
            unit_start = line_start + (bullet.end() if bullet else 0)
    if unit_start is not None:
        spans.extend(_split_paragraph(text, unit_start, len(text)))
    return spans

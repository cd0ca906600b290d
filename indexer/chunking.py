"""Section-aware chunking: chunks never cross a section boundary and keep exact offsets into the source.

A chunk's text is always the verbatim slice `document.text[start:end]`, so a citation's quoted span can
be traced back to the source file. Paragraphs and lists are kept whole where they fit the token budget;
larger ones are split at sentence boundaries, and a single over-long sentence at word boundaries.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator

from app.config import ChunkSettings
from indexer.analysis import Span, split_sentences, trim_span
from indexer.loaders.base import Document, Section
from indexer.store import Chunk

TokenCounter = Callable[[str], int]

_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_WORD_RE = re.compile(r"\S+")
_PIECE_RE = re.compile(r"\w{1,20}|[^\w\s]{1,10}")


def chunk_id(doc_id: str, section_path: tuple[str, ...], start: int, end: int) -> str:
    """Stable id: unchanged documents keep their chunk ids across rebuilds, so citations survive."""
    key = "\x1f".join([doc_id, "\x1e".join(section_path), str(start), str(end)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


def breadcrumb(section_path: tuple[str, ...], title: str) -> str:
    return " > ".join(section_path) if section_path else title


class SectionChunker:
    """Split a document into chunks that follow its section tree and fit a token budget."""

    def __init__(self, settings: ChunkSettings, count_tokens: TokenCounter) -> None:
        if settings.max_tokens < 16:
            raise ValueError(f"chunk max_tokens must be >= 16, got {settings.max_tokens}")
        self.settings = settings
        self.count_tokens = count_tokens
        self._skip = {s.casefold() for s in settings.skip_sections}

    def run(self, document: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in document.sections:
            if section.path and section.path[-1].casefold() in self._skip:
                continue
            crumb = breadcrumb(section.path, document.title)
            budget = self.settings.max_tokens - self.count_tokens(crumb) - 1
            if budget < 8:
                budget = 8  # a pathological breadcrumb; the chunk is reported as over-long later
            for span in self._pack(document.text, self._units(document.text, section, budget), budget):
                text = document.text[span.start : span.end]
                chunks.append(
                    Chunk(
                        id=chunk_id(
                            document.doc_id,
                            section.path,
                            document.source_offset(span.start),
                            document.source_offset(span.end),
                        ),
                        doc_id=document.doc_id,
                        ordinal=len(chunks),
                        section_path=section.path,
                        breadcrumb=crumb,
                        text=text,
                        start=document.source_offset(span.start),
                        end=document.source_offset(span.end),
                        anchors=document.anchors_within(span.start, span.end),
                        page=document.page_at(span.start),
                        n_tokens=self.count_tokens(f"{crumb}\n{text}"),
                    )
                )
        return chunks

    def _units(self, text: str, section: Section, budget: int) -> Iterator[tuple[Span, int]]:
        """Blocks (paragraphs, whole lists) that fit the budget, else their sentences, else word runs."""
        start = section.body_start
        bounds = [m.start() for m in _BLANK_LINE_RE.finditer(text, section.body_start, section.body_end)]
        for end in [*bounds, section.body_end]:
            block = trim_span(text, start, end)
            start = end
            if block is None:
                continue
            tokens = self.count_tokens(text[block.start : block.end])
            if tokens <= budget:
                yield block, tokens
                continue
            for rel in split_sentences(text[block.start : block.end]):
                sent = Span(block.start + rel.start, block.start + rel.end)
                tokens = self.count_tokens(text[sent.start : sent.end])
                if tokens <= budget:
                    yield sent, tokens
                else:
                    yield from self._word_runs(text, sent, budget)

    def _word_runs(self, text: str, span: Span, budget: int) -> Iterator[tuple[Span, int]]:
        run_start: int | None = None
        run_end = span.start
        run_tokens = 0
        for m in self._pieces(text, span, budget):
            tokens = self.count_tokens(m.group())
            if run_start is not None and run_tokens + tokens > budget:
                yield Span(run_start, run_end), run_tokens
                run_start, run_tokens = None, 0
            if run_start is None:
                run_start = m.start()
            run_end, run_tokens = m.end(), run_tokens + tokens
        if run_start is not None:
            yield Span(run_start, run_end), run_tokens

    def _pieces(self, text: str, span: Span, budget: int) -> Iterator[re.Match[str]]:
        """Whitespace-separated words; a word over the budget on its own (a long URL, a run of citation
        links) is cut further at letter/punctuation boundaries so no chunk has to exceed the budget."""
        for m in _WORD_RE.finditer(text, span.start, span.end):
            if len(m.group()) < budget or self.count_tokens(m.group()) <= budget:
                yield m
            else:
                yield from _PIECE_RE.finditer(text, m.start(), m.end())

    @staticmethod
    def _pack(text: str, units: Iterator[tuple[Span, int]], budget: int) -> Iterator[Span]:
        """Join consecutive units into chunks of balanced size (no tiny tail chunk), each within budget.

        WordPiece counts add up across whitespace-separated units, so sums are exact enough.
        """
        items = list(units)
        total = sum(t for _, t in items)
        target = total / max(1, math.ceil(total / budget)) if total else budget
        current: Span | None = None
        current_tokens = 0
        for span, tokens in items:
            fits = current_tokens + tokens <= budget and current_tokens + tokens / 2 <= target
            if current is not None and fits:
                current, current_tokens = Span(current.start, span.end), current_tokens + tokens
                continue
            if current is not None:
                yield current
            current, current_tokens = span, tokens
        if current is not None:
            yield current

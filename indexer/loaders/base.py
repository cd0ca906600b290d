"""What every loader produces: a document's metadata, its full source text and its section tree."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# A loader reads one file and returns the documents in it (one for Markdown, HTML, PDF or text;
# many for JSONL, MedQuAD XML or PubMedQA JSON). `doc_id` is the id for the file: single-document
# loaders use it as is, multi-document loaders derive one id per record from it (f"{doc_id}#{record}").
Loader = Callable[[Path, str], list["Document"]]


def record_id(doc_id: str) -> str:
    """The record's own id inside a multi-document file (`file#record` -> `record`); other ids as they are."""
    return doc_id.split("#", 1)[1] if "#" in doc_id else doc_id


Anchors = tuple[tuple[int, int], ...]
"""(text offset, source offset) pairs, sorted: from each text offset on, text and source advance together
until the next pair. Empty when the text is the source verbatim."""


def map_offset(anchors: Anchors, pos: int, base: int = 0) -> int:
    """The source offset of text offset `pos` (`base + pos` before the first anchor)."""
    i = bisect.bisect_right(anchors, (pos, float("inf"))) - 1
    if i < 0:
        return base + pos
    text_at, source_at = anchors[i]
    return source_at + (pos - text_at)


# Metadata keys that fill `Document` fields, with the spellings seen in real corpora (NCI PDQ front
# matter uses lastReviewed); shared by the Markdown front matter and JSONL records.
META_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "organisation": ("organisation", "organization", "source", "publisher"),
    "url": ("url", "source_url"),
    "published": ("published", "date", "datePublished"),
    "reviewed": ("reviewed", "lastReviewed", "last_reviewed", "dateModified"),
    "version": ("version",),
    "disclaimer": ("disclaimer",),
}


class LoaderError(Exception):
    """A source file that cannot be read as a document; the build reports it and skips the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Section:
    """A heading and the body text that follows it, up to the next heading.

    `path` holds the heading titles from the document's top down to this section; offsets index
    into `Document.text`.
    """

    path: tuple[str, ...]
    body_start: int
    body_end: int


@dataclass(frozen=True)
class Document:
    doc_id: str
    source_path: str
    text: str
    title: str
    sections: tuple[Section, ...]
    organisation: str | None = None
    url: str | None = None
    published: str | None = None
    reviewed: str | None = None
    version: str | None = None
    disclaimer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # For paged sources (PDF): the offset in `text` where each page starts; page n starts at
    # page_starts[n - 1]. Empty for unpaged formats.
    page_starts: tuple[int, ...] = ()
    # Where `text` is a rendering of the file (Markdown links shown as their text), the offsets back
    # into the file; empty when `text` is the file's text verbatim.
    source_anchors: Anchors = ()

    def source_offset(self, offset: int) -> int:
        """Character offset in the source file of `offset` in `text`."""
        return map_offset(self.source_anchors, offset)

    def anchors_within(self, start: int, end: int) -> Anchors:
        """Anchors for text[start:end], relative to `start`: empty when that stretch is verbatim."""
        if not self.source_anchors:
            return ()
        lo = bisect.bisect_left(self.source_anchors, (start, -1))
        hi = bisect.bisect_right(self.source_anchors, (end, float("inf")))
        inner = self.source_anchors[lo:hi]
        if not inner:
            return ()
        head = () if inner[0][0] == start else ((0, self.source_offset(start)),)
        return head + tuple((t - start, s) for t, s in inner)

    def page_at(self, offset: int) -> int | None:
        """1-based page number containing `offset`, or None for unpaged documents."""
        if not self.page_starts:
            return None
        return bisect.bisect_right(self.page_starts, offset) or 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def rooted_at_title(sections: list[Section], title: str) -> list[Section]:
    """Sections whose paths start at the document's title, for sources with no level-1 heading:
    breadcrumbs always begin with the document."""
    return [Section((title, *s.path), s.body_start, s.body_end) for s in sections]

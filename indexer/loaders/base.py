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

    def page_at(self, offset: int) -> int | None:
        """1-based page number containing `offset`, or None for unpaged documents."""
        if not self.page_starts:
            return None
        return bisect.bisect_right(self.page_starts, offset) or 1

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

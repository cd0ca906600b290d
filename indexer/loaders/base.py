"""What every loader produces: a document's metadata, its full source text and its section tree."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


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

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

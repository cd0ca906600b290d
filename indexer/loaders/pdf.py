"""PDF via pypdf: text extracted page by page, page offsets for page-exact citations, sections from the outline.

The text is the pages joined by blank lines, and `Document.page_starts` records where each page begins.
When the PDF has an outline (bookmarks), each entry starts a section at its title on its page; without one
the document is a single section under its title. Sections are cut at page boundaries so that no chunk
spans two pages and every chunk's page number is exact.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader

from indexer.loaders.base import Document, LoaderError, Section

PAGE_SEPARATOR = "\n\n"
# Titles that PDF writers put in by default (ReportLab, some word processors): no title at all.
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document"})


@dataclass(frozen=True)
class OutlineEntry:
    """An outline (bookmark) entry: its titles from the top level down, and its 0-based page index."""

    path: tuple[str, ...]
    page: int


def _open(path: Path) -> PdfReader:
    """A reader for the file, decrypted when only an owner password (print/copy restrictions) is set."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read the file ({exc.__class__.__name__})") from exc
    if not raw.strip():
        raise LoaderError(str(path), "empty file")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise LoaderError(str(path), "encrypted PDF (needs a password)")
    except LoaderError:
        raise
    # pypdf raises assorted built-in exceptions (KeyError, ValueError, TypeError, ...) on corrupt files and
    # needs an extra package for AES encryption, so anything raised while opening the file is bad input.
    except Exception as exc:
        raise LoaderError(str(path), f"corrupt or unsupported PDF ({exc.__class__.__name__}: {exc})") from exc
    return reader


def _page_texts(reader: PdfReader, path: Path) -> list[str]:
    try:
        return [(page.extract_text() or "").replace("\x00", "").rstrip() for page in reader.pages]
    except Exception as exc:  # corrupt content streams fail here, with the same assorted exceptions
        raise LoaderError(str(path), f"cannot extract text ({exc.__class__.__name__}: {exc})") from exc


def join_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """The document text and the offset where each page starts in it."""
    starts: list[int] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(pages), tuple(starts)


def _metadata(reader: PdfReader) -> tuple[str | None, str | None]:
    """(title, author) from the document information dictionary, when it has them and they are readable."""
    try:
        meta = reader.metadata
        if meta is None:
            return None, None
        title, author = meta.title, meta.author
    except Exception:  # a broken info dictionary costs the metadata, not the document
        return None, None
    title = _clean(title)
    if title is not None and title.casefold() in _PLACEHOLDER_TITLES:
        title = None
    return title, _clean(author)


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _walk_outline(reader: PdfReader, items: list[Any], parents: tuple[str, ...]) -> Iterator[OutlineEntry]:
    """Outline entries in order; pypdf gives a nested list where a sub-list holds the previous entry's children."""
    path = parents
    for item in items:
        if isinstance(item, list):
            yield from _walk_outline(reader, item, path)
            continue
        title = _clean(getattr(item, "title", None))
        if title is None:
            continue
        path = (*parents, title)
        page = reader.get_destination_page_number(item)
        if page is not None and page >= 0:
            yield OutlineEntry(path, page)


def read_outline(reader: PdfReader) -> list[OutlineEntry]:
    """The outline entries that point at a page; empty when there is none or it cannot be read."""
    try:
        return list(_walk_outline(reader, reader.outline, ()))
    except Exception:  # a broken outline costs the section tree, not the document
        return []


def _title_pattern(title: str) -> re.Pattern[str]:
    """Matches the title across the line breaks and spacing that text extraction produces."""
    return re.compile(r"\s+".join(re.escape(word) for word in title.split()), re.IGNORECASE)


def outline_sections(text: str, page_starts: tuple[int, ...], entries: list[OutlineEntry], title: str) -> list[Section]:
    """Sections starting at each outline title on its page (at the page's top when the title is not found).

    Entries are placed in reading order: one that points before the previous one starts where that one's
    body starts, so sections stay disjoint and ordered even for an outline that is out of order.
    """
    page_ends = [*(s - len(PAGE_SEPARATOR) for s in page_starts[1:]), len(text)]
    heads: list[tuple[tuple[str, ...], int, int]] = []
    cursor = 0
    for entry in entries:
        if entry.page >= len(page_starts):
            continue
        lo = max(cursor, page_starts[entry.page])
        m = _title_pattern(entry.path[-1]).search(text, lo, max(lo, page_ends[entry.page]))
        head_start, body_start = (m.start(), m.end()) if m else (lo, lo)
        heads.append((entry.path, head_start, body_start))
        cursor = body_start
    sections = [Section((title,), 0, heads[0][1] if heads else len(text))]
    for i, (path, _, body_start) in enumerate(heads):
        body_end = heads[i + 1][1] if i + 1 < len(heads) else len(text)
        top = path if path[0].casefold() == title.casefold() else (title, *path)
        sections.append(Section(top, body_start, body_end))
    return sections


def split_at_pages(text: str, sections: list[Section], page_starts: tuple[int, ...]) -> list[Section]:
    """Sections cut where a page starts, without the pieces that hold no text."""
    pieces: list[Section] = []
    for section in sections:
        start = section.body_start
        for page_start in page_starts:
            if start < page_start < section.body_end:
                pieces.append(Section(section.path, start, page_start))
                start = page_start
        pieces.append(Section(section.path, start, section.body_end))
    return [s for s in pieces if text[s.body_start : s.body_end].strip()]


def load_pdf(path: Path, doc_id: str) -> Document:
    """Load one PDF; raises `LoaderError` for encrypted, corrupt or text-less (scanned) files."""
    reader = _open(path)
    text, page_starts = join_pages(_page_texts(reader, path))
    if not text.strip():
        raise LoaderError(str(path), "no extractable text (a scanned PDF needs OCR first)")
    meta_title, author = _metadata(reader)
    title = meta_title or path.stem
    sections = outline_sections(text, page_starts, read_outline(reader), title)
    return Document(
        doc_id=doc_id,
        source_path=str(path),
        text=text,
        title=title,
        sections=tuple(split_at_pages(text, sections, page_starts)),
        extra={"author": author} if author else {},
        page_starts=page_starts,
    )

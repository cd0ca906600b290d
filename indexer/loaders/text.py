"""Plain text: one document with one section; the title comes from a short first line or the file name."""

from __future__ import annotations

import re
from pathlib import Path

from indexer.loaders.base import Document, LoaderError, Section

# A first line this short reads as a title; a longer one is the start of the text itself.
MAX_TITLE_CHARS = 120

_FIRST_LINE_RE = re.compile(r"[ \t]*(\S[^\r\n]*?)[ \t]*(?:\r?\n|\Z)")
# The first line stands alone (a title) when a blank line follows it.
_BLANK_LINE_RE = re.compile(r"[ \t]*\r?\n")


def read_text_file(path: Path) -> str:
    """The file decoded as UTF-8 (a leading byte-order mark dropped); `LoaderError` if it is not text."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoaderError(str(path), f"cannot read as UTF-8 text ({exc.__class__.__name__})") from exc
    if "\x00" in text:
        raise LoaderError(str(path), "binary content (NUL bytes) in a text file")
    return text


def title_and_body_start(text: str, fallback: str) -> tuple[str, int]:
    """The document title and the offset where the section body starts.

    A short first line is the title. It is left out of the body only when it stands alone (a blank line
    follows it and text follows that): a first line that runs on into a paragraph is content, and
    dropping it would make it impossible to cite.
    """
    m = _FIRST_LINE_RE.search(text)
    if m is None:
        return fallback, 0
    line = m.group(1)
    if len(line) >= MAX_TITLE_CHARS:
        return fallback, 0
    stands_alone = _BLANK_LINE_RE.match(text, m.end()) is not None and bool(text[m.end() :].strip())
    return line, m.end() if stands_alone else 0


def load_text(path: Path, doc_id: str) -> Document:
    """Load one plain-text file; raises `LoaderError` for unreadable or empty input."""
    text = read_text_file(path)
    if not text.strip():
        raise LoaderError(str(path), "no text in the file")
    title, body_start = title_and_body_start(text, path.stem)
    return Document(
        doc_id=doc_id,
        source_path=str(path),
        text=text,
        title=title,
        sections=(Section((title,), body_start, len(text)),),
    )

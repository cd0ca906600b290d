"""Markdown with optional YAML front matter: section tree from ATX headings, offsets into the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from indexer.loaders.base import META_KEYS, Anchors, Document, LoaderError, Section, rooted_at_title
from indexer.loaders.text import read_text_file

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(```|~~~)")
# Inline links and images whose text holds no brackets and no blank line: [text](target), ![alt](target "t").
_LINK_RE = re.compile(
    r"!?\[((?:[^\[\]\n]|\n(?![ \t]*\n)){0,500})\]"  # the text: up to 500 characters, no blank line
    r"\((?:[^()\s]|\([^()\s]*\))*(?:[ \t]+\"[^\"\n]*\")?\)"  # (target "optional title")
)


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | dict):
        return None
    text = str(value).strip()
    return text or None


def parse_front_matter(text: str, path: str) -> tuple[dict[str, Any], int]:
    """Return the front matter mapping and the offset where the body starts."""
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        return {}, 0
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise LoaderError(path, f"invalid YAML front matter ({exc.__class__.__name__})") from exc
    if not isinstance(meta, dict):
        raise LoaderError(path, "front matter is not a mapping")
    return meta, m.end()


def parse_sections(text: str, body_start: int) -> tuple[list[Section], str | None]:
    """Sections from ATX headings (ignoring fenced code); returns them and the first level-1 title."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    first_h1: str | None = None
    current_path: tuple[str, ...] = ()
    current_start = body_start
    in_fence = False
    pos = body_start
    for line in text[body_start:].splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        m = None if in_fence else _HEADING_RE.match(line.rstrip("\r\n"))
        if not m:
            continue
        if line_start > current_start:
            sections.append(Section(current_path, current_start, line_start))
        level, title = len(m.group(1)), m.group(2).strip()
        if level == 1 and first_h1 is None:
            first_h1 = title
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        current_path = tuple(t for _, t in stack)
        current_start = pos
    if len(text) > current_start:
        sections.append(Section(current_path, current_start, len(text)))
    return [s for s in sections if text[s.body_start : s.body_end].strip()], first_h1


def render_links(text: str, start: int = 0) -> tuple[str, Anchors]:
    """text[start:] with inline links and images shown as their text, and the anchors back into `text`.

    NCI PDQ summaries spend almost a third of their characters on link targets (glossary pop-ups,
    citation anchors such as `[[3](#cit/section_6.3)]`, rendered here as `[3]`); indexed raw, they
    would crowd the encoder's token budget and the BM25 vocabulary with URL fragments.
    """
    out: list[str] = []
    anchors: list[tuple[int, int]] = []
    length = 0
    pos = start
    for m in _LINK_RE.finditer(text, start):
        out.append(text[pos : m.start()])
        length += m.start() - pos
        label_start = m.start(1)
        anchors.append((length, label_start))
        out.append(m.group(1))
        length += len(m.group(1))
        anchors.append((length, m.end()))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), tuple(anchors)


def load_markdown(path: Path, doc_id: str) -> Document:
    """Load one Markdown file; raises `LoaderError` for unreadable or malformed input."""
    text = read_text_file(path)
    meta, body_start = parse_front_matter(text, str(path))
    body, anchors = render_links(text, body_start)
    source_anchors = tuple((t + body_start, s) for t, s in anchors)
    text = text[:body_start] + body
    sections, first_h1 = parse_sections(text, body_start)
    if not sections:
        raise LoaderError(str(path), "no text after the front matter")
    fields = {key: next((_scalar(meta[k]) for k in keys if k in meta), None) for key, keys in META_KEYS.items()}
    title = fields.pop("title") or first_h1 or path.stem
    if first_h1 is None:
        # Breadcrumbs always start at the document's title, even when the file has no level-1 heading.
        sections = rooted_at_title(sections, title)
    used = {k for keys in META_KEYS.values() for k in keys}
    extra = {k: v for k, raw in meta.items() if k not in used and (v := _scalar(raw)) is not None}
    return Document(
        doc_id=doc_id,
        source_path=str(path),
        text=text,
        title=title,
        sections=tuple(sections),
        extra=extra,
        source_anchors=source_anchors,
        **fields,
    )

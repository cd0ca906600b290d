"""HTML with the standard library's parser: readable plain text, a section tree from h1-h6, <meta> metadata.

The text is rebuilt from the markup, so offsets index into that text, not into the HTML: block elements
become paragraphs separated by blank lines, list items lines starting with "- " (or "1. " in ordered
lists), table rows lines of cells joined by " | ". Scripts, styles and page furniture (navigation, site
header and footer) are dropped. Headings are blocks of their own and belong to no section body, as in
the Markdown loader.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from indexer.loaders.base import Document, LoaderError, Section, rooted_at_title

# Elements whose content is never document text. <header> is site furniture only outside an article
# (see _TextExtractor._skips): inside <article> or <main> it holds the article's own title.
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "nav", "footer", "header", "title"})
# Elements whose nesting is tracked: the skipped ones, and those that make a <header> part of the page.
_TRACKED = _SKIP | {"article", "main"}
_LISTS = frozenset({"ul", "ol", "dir", "menu"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "form", "hgroup", "html", "legend", "main",
        "p", "section", "summary",
    }
)  # fmt: skip
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)

# <meta> keys (name, property or itemprop, lower-cased) and <link rel> values for each field, best first.
_META_KEYS: dict[str, tuple[str, ...]] = {
    "organisation": ("publisher", "dcterms.publisher", "dc.publisher", "citation_publisher", "og:site_name", "author"),
    "url": ("canonical", "og:url", "dcterms.identifier"),
    "published": (
        "dcterms.date", "dcterms.issued", "dcterms.created", "dc.date", "article:published_time",
        "citation_publication_date", "date",
    ),
    "reviewed": ("dcterms.modified", "dc.date.modified", "article:modified_time", "last-modified"),
}  # fmt: skip


@dataclass(frozen=True)
class Block:
    """A paragraph-level piece of the text; `level` is the heading level, 0 for anything else."""

    text: str
    level: int = 0


@dataclass
class ParsedHtml:
    """What the parser reads from a page: text blocks in order, the <title> text and the <meta> values."""

    blocks: list[Block] = field(default_factory=list)
    title: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class _OpenList:
    """A list being read: ordered lists number their items, others mark them with "- "."""

    ordered: bool
    items: int = 0


def _collapse(text: str) -> str:
    return " ".join(text.split())


class _TextExtractor(HTMLParser):
    """Turns markup into blocks of plain text; block boundaries are decided by start and end tags, so
    unclosed <p> and <li> (valid HTML) work as well as closed ones."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = ParsedHtml()
        self._open: list[tuple[str, bool]] = []  # open tracked elements, and whether each adds to _skip_depth
        self._skip_depth = 0
        self._lines: list[str] = []  # finished lines of the current block
        self._line: list[str] = []  # text fragments of the current line
        self._prefix = ""  # list marker of the current line
        self._lists: list[_OpenList] = []
        self._table_depth = 0
        self._cells_in_row = 0
        self._heading = 0  # level of the open heading
        self._pre = 0
        self._title: list[str] | None = None

    # -- structure ----------------------------------------------------------------------------------

    def _inline_only(self) -> bool:
        """Inside a heading, list item or table cell, nested blocks are run into one line."""
        return bool(self._heading or self._lists or self._table_depth)

    def _end_line(self) -> None:
        raw = "".join(self._line)
        text = raw.strip("\n").rstrip() if self._pre else _collapse(raw)
        if text:
            self._lines.append(self._prefix + text)
        self._line, self._prefix = [], ""

    def _end_block(self) -> None:
        self._end_line()
        if self._lines:
            self.result.blocks.append(Block("\n".join(self._lines)))
        self._lines = []

    def _space(self) -> None:
        self._line.append(" ")

    # -- skipping -----------------------------------------------------------------------------------

    def _skips(self, tag: str) -> bool:
        if tag == "header":
            return not any(t in ("article", "main") for t, _ in self._open)
        return tag in _SKIP

    def _push(self, tag: str) -> None:
        if tag == "title" and not self._skip_depth and self.result.title is None:
            self._title = []  # the page's <title>, not an <svg> one
        counted = bool(self._skip_depth) or self._skips(tag)
        self._skip_depth += counted
        self._open.append((tag, counted))

    def _pop(self, tag: str) -> None:
        """Close `tag` and anything left open inside it (browsers do the same with unclosed elements)."""
        if not any(t == tag for t, _ in self._open):
            return
        while self._open:
            closed, counted = self._open.pop()
            self._skip_depth -= counted
            if closed == "title" and self._title is not None:
                self.result.title = _collapse("".join(self._title)) or None
                self._title = None
            if closed == tag:
                return

    # -- parser callbacks ---------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("meta", "link"):
            self._read_meta(tag, dict(attrs))
            return
        if tag in _TRACKED:
            self._push(tag)
        if not self._skip_depth:
            self._start(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>, <meta .../>: a self-closing tag opens nothing, whatever its name.
        if tag in ("meta", "link"):
            self._read_meta(tag, dict(attrs))
        elif not self._skip_depth and tag in ("br", "hr"):
            self._start(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _TRACKED:
            self._pop(tag)
        if not self._skip_depth:
            self._end(tag)

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        if not self._skip_depth:
            self._line.append(data)

    def close(self) -> None:
        super().close()
        if self._heading:
            self._end_heading()
        self._end_block()

    # -- elements -----------------------------------------------------------------------------------

    def _start(self, tag: str) -> None:
        if self._table_depth and (tag in _LISTS or tag == "li"):
            self._space()  # a list inside a table cell runs into the cell's text
        elif tag in _HEADINGS and not self._inline_only():
            self._end_block()
            self._heading = _HEADINGS[tag]
        elif tag in _LISTS:
            self._start_list(ordered=tag == "ol")
        elif tag == "li" and self._lists:
            self._start_item()
        elif tag == "table":
            self._start_table()
        elif tag == "tr" and self._table_depth:
            self._end_line()
            self._cells_in_row = 0
        elif tag in ("td", "th") and self._table_depth:
            self._line.append(" | " if self._cells_in_row else "")
            self._cells_in_row += 1
        elif tag == "pre" and not self._inline_only():
            self._end_block()
            self._pre += 1
        elif tag == "br":
            self._line_break()
        elif tag == "hr" and not self._inline_only():
            self._end_block()
        elif tag in _BLOCKS or tag in _HEADINGS or tag in ("li", "td", "th", "tr", "pre"):
            self._boundary()

    def _end(self, tag: str) -> None:
        if self._table_depth and (tag in _LISTS or tag == "li"):
            self._space()
        elif tag in _HEADINGS and self._heading:
            self._end_heading()
        elif tag in _LISTS and self._lists:
            self._end_list()
        elif tag == "li" and self._lists:
            self._end_line()
        elif tag == "table" and self._table_depth:
            self._end_table()
        elif tag == "tr" and self._table_depth:
            self._end_line()
        elif tag == "pre" and self._pre:
            self._end_block()
            self._pre -= 1
        elif tag in _BLOCKS or tag in _HEADINGS or tag in ("td", "th"):
            self._boundary()

    def _boundary(self) -> None:
        """A block element's edge: a new paragraph, or a space where blocks run into one line."""
        if self._inline_only():
            self._space()
        else:
            self._end_block()

    def _line_break(self) -> None:
        """<br>: a new line in a paragraph, a space in a heading, list item or table cell."""
        if self._pre:
            self._line.append("\n")
        elif self._inline_only():
            self._space()
        else:
            self._end_line()

    def _end_heading(self) -> None:
        self._end_line()
        text = _collapse(" ".join(self._lines))
        self._lines = []
        if text:
            self.result.blocks.append(Block(text, self._heading))
        self._heading = 0

    def _start_list(self, ordered: bool) -> None:
        if self._lists:
            self._end_line()  # a nested list: the parent item's text so far is a line of its own
        elif not self._heading:
            self._end_block()
        self._lists.append(_OpenList(ordered))

    def _start_item(self) -> None:
        self._end_line()
        current = self._lists[-1]
        current.items += 1
        marker = f"{current.items}. " if current.ordered else "- "
        self._prefix = "  " * (len(self._lists) - 1) + marker

    def _end_list(self) -> None:
        self._end_line()
        self._lists.pop()
        if not self._lists and not self._table_depth and not self._heading:
            self._end_block()

    def _start_table(self) -> None:
        if self._table_depth:
            self._space()  # a table inside a cell: its cells run into the outer cell
        elif not self._inline_only():
            self._end_block()
        self._table_depth += 1

    def _end_table(self) -> None:
        self._table_depth -= 1
        if self._table_depth == 0 and not self._inline_only():
            self._end_block()

    # -- metadata -----------------------------------------------------------------------------------

    def _read_meta(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "link":
            rels = (attrs.get("rel") or "").lower().split()
            key, value = ("canonical" if "canonical" in rels else None), attrs.get("href")
        else:
            name = attrs.get("name") or attrs.get("property") or attrs.get("itemprop")
            key, value = (name.strip().lower() if name else None), attrs.get("content")
        value = _collapse(value or "")
        if key and value:
            self.result.meta.setdefault(key, value)


def parse_html(source: str) -> ParsedHtml:
    """Blocks, <title> and <meta> values of an HTML page."""
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    return parser.result


def layout(blocks: list[Block]) -> tuple[str, list[Section], str | None]:
    """Join blocks with blank lines; sections from headings, as in Markdown (a heading's body runs to the
    next heading and excludes the heading's own text). Returns text, sections and the first h1 text."""
    parts: list[str] = []
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    current_path: tuple[str, ...] = ()
    current_start = 0
    first_h1: str | None = None
    offset = 0
    for block in blocks:
        if parts:
            parts.append("\n\n")
            offset += 2
        parts.append(block.text)
        start, offset = offset, offset + len(block.text)
        if not block.level:
            continue
        if start > current_start:
            sections.append(Section(current_path, current_start, start))
        if block.level == 1 and first_h1 is None:
            first_h1 = block.text
        while stack and stack[-1][0] >= block.level:
            stack.pop()
        stack.append((block.level, block.text))
        current_path = tuple(t for _, t in stack)
        current_start = offset
    text = "".join(parts)
    if len(text) > current_start:
        sections.append(Section(current_path, current_start, len(text)))
    return text, [s for s in sections if text[s.body_start : s.body_end].strip()], first_h1


def decode_html(raw: bytes, path: Path) -> str:
    """Decode with the charset a <meta> declares (UTF-8 when none does); `LoaderError` if that fails."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    m = _CHARSET_RE.search(raw[:4096])
    encoding = m.group(1).decode("ascii").lower() if m else "utf-8"
    try:
        text = raw.decode(encoding)
    except LookupError as exc:
        raise LoaderError(str(path), f"unknown charset {encoding!r}") from exc
    except UnicodeDecodeError as exc:
        raise LoaderError(str(path), f"cannot decode as {encoding} ({exc.reason})") from exc
    if "\x00" in text:
        raise LoaderError(str(path), "binary content (NUL bytes) in an HTML file")
    return text


def load_html(path: Path, doc_id: str) -> Document:
    """Load one HTML page; raises `LoaderError` for undecodable input or a page without text."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read the file ({exc.__class__.__name__})") from exc
    try:
        parsed = parse_html(decode_html(raw, path))
    except AssertionError as exc:  # html.parser's way of rejecting a malformed "<![...]>" declaration
        raise LoaderError(str(path), f"malformed markup ({exc})") from exc
    text, sections, first_h1 = layout(parsed.blocks)
    if not sections:
        raise LoaderError(str(path), "no text in the page")
    title = parsed.title or first_h1 or path.stem
    if first_h1 is None:
        # Breadcrumbs always start at the document's title, even when the page has no level-1 heading.
        sections = rooted_at_title(sections, title)
    fields = {name: next((parsed.meta[k] for k in keys if k in parsed.meta), None) for name, keys in _META_KEYS.items()}
    extra = {"description": parsed.meta["description"]} if "description" in parsed.meta else {}
    return Document(
        doc_id=doc_id,
        source_path=str(path),
        text=text,
        title=title,
        sections=tuple(sections),
        extra=extra,
        **fields,
    )

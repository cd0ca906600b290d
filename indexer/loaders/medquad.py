"""MedQuAD XML: one document per file, one section per question-answer pair.

The text holds each pair as a "question\\n\\nanswer" block; a section's path is (focus, question) and its
body is the answer alone, so a chunk never repeats the question that its breadcrumb already carries.
Most files use the `<Document>` schema; a few in the release use `<DiseaseFile>` (same children) or a
lower-case `<doc>` variant, and all three are read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from indexer.loaders.base import Document, LoaderError, Section


@dataclass(frozen=True)
class _Schema:
    """Element and attribute names of one MedQuAD XML variant."""

    id_attr: str
    source_attr: str
    focus: str
    cui: str
    pair: str
    question: str
    answer: str


_SCHEMAS: dict[str, _Schema] = {
    "Document": _Schema("id", "source", "Focus", "CUI", "QAPairs/QAPair", "Question", "Answer"),
    "DiseaseFile": _Schema("fid", "source", "Focus", "CUI", "QAPairs/QAPair", "Question", "Answer"),
    "doc": _Schema("docid", "corpus", "doctitle-focus", "cui", "qaPairs/pair", "question", "answer"),
}
# Parsing a DTD can expand entities without bound; MedQuAD files never declare one.
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def clean_answer(raw: str) -> str:
    """Answer text without the XML's indentation: lines stripped, runs of blank lines cut to one."""
    lines = (line.strip() for line in raw.replace("\r\n", "\n").split("\n"))
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


def _parse(path: Path) -> ET.Element:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read the file ({exc.__class__.__name__})") from exc
    if any(marker in raw for marker in _DTD_MARKERS):
        raise LoaderError(str(path), "XML with a DTD or entity declarations is not accepted")
    try:
        return ET.fromstring(raw)
    # LookupError: the XML declaration names an encoding Python does not know.
    except (ET.ParseError, LookupError) as exc:
        raise LoaderError(str(path), f"malformed XML ({exc})") from exc


def _qa_pairs(root: ET.Element, schema: _Schema) -> list[tuple[str, str]]:
    """(question, answer) for each pair with both; pairs whose answer was withheld are left out."""
    pairs: list[tuple[str, str]] = []
    for pair in root.iterfind(schema.pair):
        question = " ".join((pair.findtext(schema.question) or "").split())
        answer = clean_answer(pair.findtext(schema.answer) or "")
        if question and answer:
            pairs.append((question, answer))
    return pairs


def _layout(focus: str, pairs: list[tuple[str, str]]) -> tuple[str, list[Section]]:
    """Join the pairs into the document text; each section's body is its answer's span."""
    parts: list[str] = []
    sections: list[Section] = []
    offset = 0
    for question, answer in pairs:
        if parts:
            parts.append("\n\n")
            offset += 2
        block_start = offset + len(question) + 2
        parts.append(f"{question}\n\n{answer}")
        sections.append(Section((focus, question), block_start, block_start + len(answer)))
        offset = block_start + len(answer)
    return "".join(parts), sections


def load_medquad(path: Path, doc_id: str) -> Document:
    """Load one MedQuAD XML file; raises `LoaderError` for malformed XML or XML that is not MedQuAD."""
    root = _parse(path)
    schema = _SCHEMAS.get(root.tag)
    if schema is None:
        raise LoaderError(str(path), f"not MedQuAD XML (root element <{root.tag}>)")
    # A few files in the release have an empty focus; their answers are still worth indexing.
    focus = " ".join((root.findtext(schema.focus) or "").split()) or path.stem
    pairs = _qa_pairs(root, schema)
    if not pairs:
        raise LoaderError(str(path), "no question-answer pair with an answer")
    text, sections = _layout(focus, pairs)
    cuis = [c for e in root.iter(schema.cui) if (c := (e.text or "").strip())]
    extra = {"cuis": ",".join(dict.fromkeys(cuis))} if cuis else {}
    if medquad_id := root.get(schema.id_attr):
        extra["medquad_id"] = medquad_id
    return Document(
        doc_id=doc_id,
        source_path=str(path),
        text=text,
        title=focus,
        sections=tuple(sections),
        organisation=root.get(schema.source_attr) or None,
        url=root.get("url") or None,
        extra=extra,
    )

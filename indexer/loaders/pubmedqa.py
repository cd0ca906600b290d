"""PubMedQA (`ori_pqal.json` shape): a JSON object mapping PMID to a question with its abstract's contexts.

One document per PMID; its text is the context paragraphs (the gold evidence) and each paragraph is a
section whose path is (question, label), so a retrieved chunk says which part of the abstract it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from indexer.loaders.base import Document, LoaderError, Section

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
# Optional string fields copied into `Document.extra`, by their key in the JSON.
_EXTRA_KEYS = {"QUESTION": "question", "LONG_ANSWER": "long_answer", "final_decision": "final_decision"}


class _ShapeError(ValueError):
    """A record that does not have the PubMedQA shape."""


def _text(record: dict[str, Any], key: str) -> str | None:
    """A string field stripped; None when it is missing, blank or not a string."""
    value = record.get(key)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _string_list(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _ShapeError(f"{key} must be a list of strings")
    return value


def _paragraphs(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, context) for each non-blank context paragraph."""
    contexts = _string_list(record, "CONTEXTS")
    labels = _string_list(record, "LABELS")
    if len(labels) != len(contexts):
        raise _ShapeError(f"{len(contexts)} CONTEXTS but {len(labels)} LABELS")
    paragraphs = [(label.strip(), context.strip()) for label, context in zip(labels, contexts, strict=True)]
    paragraphs = [(label, context) for label, context in paragraphs if context]
    if not paragraphs:
        raise _ShapeError("no CONTEXTS text")
    return paragraphs


def _layout(question: str, paragraphs: list[tuple[str, str]]) -> tuple[str, list[Section]]:
    sections: list[Section] = []
    offset = 0
    for label, context in paragraphs:
        sections.append(Section((question, label or "CONTEXT"), offset, offset + len(context)))
        offset += len(context) + 2
    return "\n\n".join(context for _, context in paragraphs), sections


def parse_record(pmid: str, record: Any, doc_id: str, source_path: str) -> Document:
    """One PMID's record as a `Document`; raises `_ShapeError` when it is not a PubMedQA record."""
    if not (pmid.isascii() and pmid.isdigit()):
        raise _ShapeError("key is not a PMID")
    if not isinstance(record, dict):
        raise _ShapeError("value is not an object")
    question = _text(record, "QUESTION")
    if question is None:
        raise _ShapeError("QUESTION must be a non-empty string")
    question = " ".join(question.split())
    text, sections = _layout(question, _paragraphs(record))
    extra = {name: value for key, name in _EXTRA_KEYS.items() if (value := _text(record, key)) is not None}
    return Document(
        doc_id=f"{doc_id}#{pmid}",
        source_path=source_path,
        text=text,
        title=question,
        sections=tuple(sections),
        url=PUBMED_URL.format(pmid=pmid),
        published=_text(record, "YEAR"),
        extra=extra,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LoaderError(str(path), f"cannot read as UTF-8 text ({exc.__class__.__name__})") from exc
    except json.JSONDecodeError as exc:
        raise LoaderError(str(path), f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise LoaderError(str(path), "JSON nested too deeply") from exc


def load_pubmedqa(path: Path, doc_id: str) -> list[Document]:
    """All records of one PubMedQA JSON file; raises `LoaderError` when the file does not have its shape."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise LoaderError(str(path), f"not PubMedQA JSON: expected an object of PMIDs, got {type(data).__name__}")
    if not data:
        raise LoaderError(str(path), "no records in the file")
    docs: list[Document] = []
    for pmid, record in data.items():
        try:
            docs.append(parse_record(pmid, record, doc_id, str(path)))
        except _ShapeError as exc:
            raise LoaderError(str(path), f"not PubMedQA JSON: record {pmid[:40]!r}: {exc}") from exc
    return docs

"""JSON Lines: one document per line, `{"id", "text"}` required, `"title"` and metadata fields optional.

A malformed line makes the whole file a `LoaderError` naming the line: the build reports the file and
skips it, rather than indexing part of a corpus without saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from indexer.loaders.base import META_KEYS, Document, LoaderError, Section
from indexer.loaders.text import read_text_file

_RESERVED = {"id", "title", "text"}


def _scalar(value: Any) -> str | None:
    """A scalar as a non-empty string; None for null, lists, objects and blank strings."""
    if value is None or isinstance(value, list | dict):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value).strip()
    return text or None


def _record_id(record: dict[str, Any]) -> str:
    raw = record.get("id")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError("'id' must be a string or an integer")
    record_id = str(raw).strip()
    if not record_id:
        raise ValueError("'id' is empty")
    return record_id


def parse_record(line: str, doc_id: str, source_path: str) -> Document:
    """One line as a `Document`; raises ValueError (with a reason) when the record is malformed."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    record_id = _record_id(record)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    title = _scalar(record.get("title")) or record_id
    used = set(_RESERVED)
    fields: dict[str, str | None] = {}
    for name, keys in ((k, v) for k, v in META_KEYS.items() if k != "title"):
        key = next((k for k in keys if _scalar(record.get(k)) is not None), None)
        fields[name] = _scalar(record[key]) if key else None
        used.update(keys)
    extra = {k: v for k, raw in record.items() if k not in used and (v := _scalar(raw)) is not None}
    return Document(
        doc_id=f"{doc_id}#{record_id}",
        source_path=source_path,
        text=text,
        title=title,
        sections=(Section((title,), 0, len(text)),),
        extra=extra,
        **fields,
    )


def load_jsonl(path: Path, doc_id: str) -> list[Document]:
    """All records of one JSONL file; raises `LoaderError` naming the first malformed line."""
    docs: list[Document] = []
    seen: set[str] = set()
    # Split on newlines only: str.splitlines would also break at U+2028, which JSON strings may hold raw.
    for lineno, line in enumerate(read_text_file(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            doc = parse_record(line, doc_id, str(path))
        except json.JSONDecodeError as exc:
            raise LoaderError(str(path), f"line {lineno}: invalid JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise LoaderError(str(path), f"line {lineno}: JSON nested too deeply") from exc
        except ValueError as exc:
            raise LoaderError(str(path), f"line {lineno}: {exc}") from exc
        if doc.doc_id in seen:
            raise LoaderError(str(path), f"line {lineno}: duplicate document id {doc.doc_id}")
        seen.add(doc.doc_id)
        docs.append(doc)
    if not docs:
        raise LoaderError(str(path), "no records in the file")
    return docs

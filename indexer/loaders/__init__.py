"""Document loaders: one module per source format, each returning `Document`s with a section tree.

`LOADERS` maps a file suffix to its loader; `load_file` picks the loader by suffix.
"""

from pathlib import Path

from indexer.loaders.base import Document, Loader, LoaderError, Section
from indexer.loaders.html import load_html
from indexer.loaders.jsonl import load_jsonl
from indexer.loaders.markdown import load_markdown
from indexer.loaders.medquad import load_medquad
from indexer.loaders.pdf import load_pdf
from indexer.loaders.pubmedqa import load_pubmedqa
from indexer.loaders.text import load_text

LOADERS: dict[str, Loader] = {
    ".md": lambda path, doc_id: [load_markdown(path, doc_id)],
    ".markdown": lambda path, doc_id: [load_markdown(path, doc_id)],
    ".html": lambda path, doc_id: [load_html(path, doc_id)],
    ".htm": lambda path, doc_id: [load_html(path, doc_id)],
    ".pdf": lambda path, doc_id: [load_pdf(path, doc_id)],
    ".txt": lambda path, doc_id: [load_text(path, doc_id)],
    ".jsonl": load_jsonl,
    # A corpus's .xml files are MedQuAD and its .json files PubMedQA; any other XML or JSON is reported
    # and skipped by the build.
    ".xml": lambda path, doc_id: [load_medquad(path, doc_id)],
    ".json": load_pubmedqa,
}


def load_file(path: Path, doc_id: str) -> list[Document]:
    """Documents in one file; raises `LoaderError` for unsupported or unreadable files."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoaderError(str(path), f"no loader for {path.suffix or 'files without a suffix'}")
    return loader(path, doc_id)


__all__ = [
    "LOADERS",
    "Document",
    "Loader",
    "LoaderError",
    "Section",
    "load_file",
    "load_html",
    "load_jsonl",
    "load_markdown",
    "load_medquad",
    "load_pdf",
    "load_pubmedqa",
    "load_text",
]

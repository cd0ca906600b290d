"""Document loaders: one module per source format, each returning `Document`s with a section tree.

`LOADERS` maps a file suffix to its loader; `load_file` picks the loader by suffix.
"""

from pathlib import Path

from indexer.loaders.base import Document, Loader, LoaderError, Section
from indexer.loaders.markdown import load_markdown

LOADERS: dict[str, Loader] = {
    ".md": lambda path, doc_id: [load_markdown(path, doc_id)],
    ".markdown": lambda path, doc_id: [load_markdown(path, doc_id)],
}


def load_file(path: Path, doc_id: str) -> list[Document]:
    """Documents in one file; raises `LoaderError` for unsupported or unreadable files."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoaderError(str(path), f"no loader for {path.suffix or 'files without a suffix'}")
    return loader(path, doc_id)


__all__ = ["LOADERS", "Document", "Loader", "LoaderError", "Section", "load_file", "load_markdown"]

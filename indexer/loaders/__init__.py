"""Document loaders: one module per source format, each returning `Document`s with a section tree."""

from indexer.loaders.base import Document, LoaderError, Section
from indexer.loaders.markdown import load_markdown

__all__ = ["Document", "LoaderError", "Section", "load_markdown"]

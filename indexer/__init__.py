"""Offline indexing: load guideline corpora, chunk them by section, build BM25, dense and concept indices."""

"""Evaluation harnesses: retrieval quality on the shared datasets or any JSONL/qrels collection."""

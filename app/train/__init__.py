"""Fine-tuning our own reranker and encoder on a corpus."""

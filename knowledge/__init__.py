"""The UMLS-style knowledge graph: concept schema, vocabulary loaders, the concept linker and graph queries."""

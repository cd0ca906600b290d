"""The knowledge graph: vocabulary concepts and relations (networkx) plus concept -> chunk postings."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import networkx as nx

from knowledge.schema import Concept, Vocabulary


class KnowledgeGraph:
    """Concepts as nodes, typed relations as edges, and which chunks mention each concept."""

    def __init__(self, graph: nx.MultiDiGraph, postings: dict[str, list[tuple[int, int]]], n_chunks: int) -> None:
        self.graph = graph
        self.n_chunks = n_chunks
        self._postings = postings

    @classmethod
    def build(cls, vocabulary: Vocabulary, chunk_mentions: list[list[str]]) -> KnowledgeGraph:
        graph = nx.MultiDiGraph()
        for c in vocabulary.concepts:
            graph.add_node(c.id, **c.model_dump(exclude={"id"}))
        for r in vocabulary.relations:
            graph.add_edge(r.source, r.target, key=r.type, type=r.type)
        postings: dict[str, list[tuple[int, int]]] = {}
        for chunk_index, concept_ids in enumerate(chunk_mentions):
            for cid, count in sorted(Counter(concept_ids).items()):
                postings.setdefault(cid, []).append((chunk_index, count))
        return cls(graph, postings, len(chunk_mentions))

    @property
    def n_concepts(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def n_relations(self) -> int:
        return self.graph.number_of_edges()

    def concepts(self) -> list[Concept]:
        return [Concept(id=n, **attrs) for n, attrs in self.graph.nodes(data=True)]

    def concept(self, concept_id: str) -> Concept | None:
        if concept_id not in self.graph:
            return None
        return Concept(id=concept_id, **self.graph.nodes[concept_id])

    def neighbours(self, concept_id: str) -> list[tuple[str, str, str]]:
        """(direction, relation type, other concept id) for every relation touching the concept."""
        if concept_id not in self.graph:
            return []
        out = [("out", d["type"], v) for _, v, d in self.graph.out_edges(concept_id, data=True)]
        return out + [("in", d["type"], u) for u, _, d in self.graph.in_edges(concept_id, data=True)]

    def postings(self, concept_id: str) -> list[tuple[int, int]]:
        """(chunk index, mention count) for each chunk mentioning the concept."""
        return self._postings.get(concept_id, [])

    def idf(self, concept_id: str) -> float:
        df = len(self._postings.get(concept_id, ()))
        return math.log(1 + (self.n_chunks - df + 0.5) / (df + 0.5))

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_chunks": self.n_chunks,
            "graph": nx.node_link_data(self.graph, edges="edges"),
            "postings": {cid: [list(p) for p in plist] for cid, plist in self._postings.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnowledgeGraph:
        graph = nx.node_link_graph(data["graph"], directed=True, multigraph=True, edges="edges")
        for _, attrs in graph.nodes(data=True):
            for key in ("semantic_types", "synonyms", "abbreviations"):
                attrs[key] = tuple(attrs.get(key, ()))
        postings = {cid: [(int(a), int(b)) for a, b in plist] for cid, plist in data["postings"].items()}
        return cls(graph, postings, int(data["n_chunks"]))

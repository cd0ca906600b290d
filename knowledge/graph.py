"""The knowledge graph: vocabulary concepts and typed relations (networkx), which chunks mention each
concept (postings), and which concepts the corpus mentions together (co-occurrence weighted by PMI)."""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import combinations
from typing import Any

import networkx as nx

from knowledge.schema import Concept, Vocabulary

_NORM_RE = re.compile(r"[^a-z0-9]+")
# Co-occurrence is kept only where it says something: pairs seen together at least this often,
# with positive PMI, and the strongest few per concept (keeps the stored graph small).
MIN_PAIR_COUNT = 2
MAX_NEIGHBOURS = 25


def _norm(text: str) -> str:
    return _NORM_RE.sub(" ", text.lower()).strip()


class KnowledgeGraph:
    """Concepts as nodes, typed relations as edges, chunk postings and PMI co-occurrence."""

    def __init__(
        self,
        graph: nx.MultiDiGraph,
        postings: dict[str, list[tuple[int, int]]],
        n_chunks: int,
        cooccurrence: dict[str, list[tuple[str, float, int]]] | None = None,
    ) -> None:
        self.graph = graph
        self.n_chunks = n_chunks
        self._postings = postings
        self._cooccurrence = cooccurrence or {}
        self._surface: dict[str, list[tuple[str, str]]] | None = None

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
        return cls(graph, postings, len(chunk_mentions), _cooccurrence(chunk_mentions))

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

    def subtypes(self, concept_id: str) -> list[str]:
        """Concepts that are a kind of this one (incoming `isa`): apixaban for anticoagulants."""
        if concept_id not in self.graph:
            return []
        return [u for u, _, d in self.graph.in_edges(concept_id, data=True) if d["type"] == "isa"]

    def cooccurring(self, concept_id: str) -> list[tuple[str, float, int]]:
        """(other concept, PMI, chunks with both), strongest first."""
        return self._cooccurrence.get(concept_id, [])

    def context_score(self, candidate_id: str, context_ids: set[str]) -> float:
        """How well a candidate sense fits the other concepts of a text: summed positive PMI with them,
        plus one for each direct vocabulary relation. Used to pick the sense of an ambiguous abbreviation."""
        pmi = {other: weight for other, weight, _ in self.cooccurring(candidate_id)}
        related = {other for _, _, other in self.neighbours(candidate_id)}
        return sum(pmi.get(c, 0.0) for c in context_ids) + len(related & context_ids)

    def posting_ids(self) -> list[str]:
        """Concepts mentioned in at least one chunk."""
        return list(self._postings)

    def postings(self, concept_id: str) -> list[tuple[int, int]]:
        """(chunk index, mention count) for each chunk mentioning the concept."""
        return self._postings.get(concept_id, [])

    def idf(self, concept_id: str) -> float:
        df = len(self._postings.get(concept_id, ()))
        return math.log(1 + (self.n_chunks - df + 0.5) / (df + 0.5))

    def lookup(self, query: str, limit: int = 10) -> list[tuple[Concept, str, str]]:
        """Concepts by name, synonym or abbreviation: exact (normalised) matches first, then names that
        start with the query, then names containing it (queries under 4 characters: exact only).
        Returns (concept, matched form, how)."""
        q = _norm(query)
        if not q:
            return []
        surface = self._surface_index()
        found: dict[str, tuple[str, str, int]] = {}
        exact_only = len(q) < 4  # "MI" should not list migraine and microalbuminuria
        for form, hits in surface.items():
            if exact_only and form != q:
                continue
            rank = 0 if form == q else 1 if form.startswith(q) else 2 if q in form else None
            if rank is None:
                continue
            for cid, how in hits:
                if cid not in found or rank < found[cid][2]:
                    found[cid] = (form, how, rank)
        order = sorted(found, key=lambda cid: (found[cid][2], -len(self.postings(cid)), cid))[:limit]
        return [(self.concept(cid), found[cid][0], found[cid][1]) for cid in order]  # type: ignore[misc]

    def _surface_index(self) -> dict[str, list[tuple[str, str]]]:
        if self._surface is None:
            index: dict[str, list[tuple[str, str]]] = {}
            for cid, attrs in self.graph.nodes(data=True):
                forms = [(attrs.get("name", ""), "name")]
                forms += [(s, "synonym") for s in attrs.get("synonyms", ())]
                forms += [(a, "abbreviation") for a in attrs.get("abbreviations", ())]
                for form, how in forms:
                    if key := _norm(form):
                        index.setdefault(key, []).append((cid, how))
            self._surface = index
        return self._surface

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_chunks": self.n_chunks,
            "graph": nx.node_link_data(self.graph, edges="edges"),
            "postings": {cid: [list(p) for p in plist] for cid, plist in self._postings.items()},
            "cooccurrence": {cid: [list(x) for x in lst] for cid, lst in self._cooccurrence.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnowledgeGraph:
        graph = nx.node_link_graph(data["graph"], directed=True, multigraph=True, edges="edges")
        for _, attrs in graph.nodes(data=True):
            for key in ("semantic_types", "synonyms", "abbreviations", "xrefs", "sources"):
                attrs[key] = tuple(attrs.get(key, ()))
        postings = {cid: [(int(a), int(b)) for a, b in plist] for cid, plist in data["postings"].items()}
        cooc = {
            cid: [(str(o), float(w), int(n)) for o, w, n in lst] for cid, lst in data.get("cooccurrence", {}).items()
        }
        return cls(graph, postings, int(data["n_chunks"]), cooc)


def _cooccurrence(chunk_mentions: list[list[str]]) -> dict[str, list[tuple[str, float, int]]]:
    """Pointwise mutual information of concepts mentioned in the same chunk:
    PMI(a, b) = log(N * n_ab / (n_a * n_b)), N = chunks, n_* = chunks mentioning them."""
    n = len(chunk_mentions)
    single: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for ids in chunk_mentions:
        unique = sorted(set(ids))
        single.update(unique)
        pairs.update(combinations(unique, 2))
    out: dict[str, list[tuple[str, float, int]]] = {}
    for (a, b), n_ab in pairs.items():
        if n_ab < MIN_PAIR_COUNT:
            continue
        pmi = math.log(n * n_ab / (single[a] * single[b]))
        if pmi <= 0:
            continue
        out.setdefault(a, []).append((b, round(pmi, 4), n_ab))
        out.setdefault(b, []).append((a, round(pmi, 4), n_ab))
    return {cid: sorted(lst, key=lambda x: (-x[1], x[0]))[:MAX_NEIGHBOURS] for cid, lst in out.items()}

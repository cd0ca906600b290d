"""Query rewriting: recognise concepts, expand abbreviations and lay synonyms, add synonyms for BM25."""

from __future__ import annotations

from app.config import RewriteSettings
from app.pipeline.types import ConceptMatch, Query
from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker


class QueryRewriter:
    """ "afib anticoagulation" -> "afib (Atrial fibrillation) anticoagulation" plus synonyms for BM25."""

    def __init__(self, settings: RewriteSettings, linker: ConceptLinker, graph: KnowledgeGraph) -> None:
        self.settings = settings
        self.linker = linker
        self.graph = graph

    def run(self, question: str) -> Query:
        question = " ".join(question.split())
        matches: list[ConceptMatch] = []
        for m in self.linker.link(question):
            concept = self.graph.concept(m.concept_id)
            if concept is None:
                continue
            matches.append(
                ConceptMatch(
                    id=concept.id,
                    name=concept.name,
                    matched_text=m.text,
                    start=m.start,
                    end=m.end,
                    via=m.via,
                    semantic_types=concept.semantic_types,
                    negated=m.negated,
                    alternatives=m.alternatives,
                )
            )
        rewritten = question
        expansions: list[str] = []
        if self.settings.expand_abbreviations:
            # Insert long forms right after the words they explain, right to left to keep offsets valid.
            by_span: dict[tuple[int, int], list[str]] = {}
            for c in matches:
                if c.via != "name" and c.name.casefold() != c.matched_text.casefold():
                    by_span.setdefault((c.start, c.end), []).append(c.name)
            for (_, end), names in sorted(by_span.items(), reverse=True):
                long_form = " or ".join(dict.fromkeys(names))
                rewritten = f"{rewritten[:end]} ({long_form}){rewritten[end:]}"
                expansions.insert(0, long_form)
        extra: list[str] = []
        present = rewritten.casefold()
        for c in matches:
            concept = self.graph.concept(c.id)
            for syn in (concept.synonyms if concept else ())[: self.settings.max_synonyms]:
                if syn.casefold() not in present and syn not in extra:
                    extra.append(syn)
        expansions.extend(extra)
        bm25_text = " ".join([rewritten, *extra])
        return Query(
            original=question,
            rewritten=rewritten,
            bm25_text=bm25_text,
            expansions=tuple(expansions),
            concepts=tuple(matches),
        )

"""SSSOM mapping files (TSV with a '#'-prefixed YAML metadata block) and merging vocabularies through them.

A mapping says two ids name the same thing (we keep skos:exactMatch by default). MONDO publishes
its exact matches to UMLS CUIs, MeSH and DOID this way; through them, a DOID class, a MONDO class
and a UMLS concept become one concept.

Merge rule (`merge_vocabularies`): ids are compared in a normalised form ("UMLS:C0011849",
"UMLS_CUI:C0011849" and "C0011849" are one id; "mesh:" and "MESH:" one prefix). Two concepts are
the same when they share an identity: their id, or an xref in one of their own source namespaces
(the DOID id of a concept with source DOID, the MONDO id of one with source MONDO; other xrefs,
such as ICD or SNOMED codes, are many-to-many and never merge), or when a mapping links one of
their identities to the other's, directly or through a chain of mappings. Links that would put two
different CUIs into one concept are refused (first come, first kept; the count is logged), so
chains of loose mappings cannot snowball into giant concepts. The merged concept's id is the CUI
when the group has one, else the first member's id; earlier vocabularies in the list win the
preferred name (the others' names become synonyms); synonyms, abbreviations, xrefs (plus the
mapped ids), sources and semantic types are unions; relations are re-pointed to the merged ids,
deduplicated, and dropped where they would now loop on one concept.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from knowledge.loaders._common import combine_concepts, cui_of, curie_prefix, normalise_curie, open_text
from knowledge.schema import Concept, Relation, Vocabulary
from knowledge.vocabulary import VocabularyError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("subject_id", "predicate_id", "object_id")
EXACT_MATCH = "skos:exactMatch"


@dataclass(frozen=True)
class Mapping:
    """One SSSOM row: subject_id <predicate_id> object_id, with the labels when the file has them."""

    subject_id: str
    predicate_id: str
    object_id: str
    subject_label: str | None = None
    object_label: str | None = None
    mapping_justification: str | None = None


@dataclass(frozen=True)
class _MappingSet:
    metadata: dict[str, Any]
    mappings: list[Mapping]


def _row_mapping(path: Path, lineno: int, columns: list[str], values: list[str]) -> Mapping:
    if len(values) != len(columns):
        raise VocabularyError(f"{path}:{lineno}: expected {len(columns)} tab-separated columns, got {len(values)}")
    row = dict(zip(columns, values, strict=True))
    missing = [c for c in REQUIRED_COLUMNS if not row[c].strip()]
    if missing:
        raise VocabularyError(f"{path}:{lineno}: empty {', '.join(missing)}")
    return Mapping(
        subject_id=row["subject_id"].strip(),
        predicate_id=row["predicate_id"].strip(),
        object_id=row["object_id"].strip(),
        subject_label=row.get("subject_label") or None,
        object_label=row.get("object_label") or None,
        mapping_justification=row.get("mapping_justification") or None,
    )


def _header(path: Path, lineno: int, line: str) -> list[str]:
    columns = line.rstrip("\r\n").split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise VocabularyError(f"{path}:{lineno}: header lacks column(s) {', '.join(missing)}")
    return columns


def _metadata(path: Path, lines: list[str]) -> dict[str, Any]:
    """The YAML metadata block (the '#' lines before the header), parsed."""
    if not lines:
        return {}
    try:
        meta = yaml.safe_load(textwrap.dedent("\n".join(line[1:] for line in lines)))
    except yaml.YAMLError as exc:
        raise VocabularyError(f"{path}: invalid metadata block ({exc})") from exc
    if meta is not None and not isinstance(meta, dict):
        raise VocabularyError(f"{path}: the metadata block is not a mapping")
    return meta or {}


def _read(path: Path, predicates: Iterable[str] | None) -> _MappingSet:
    """Stream the file: metadata lines, header, then one mapping per line (blank lines skipped)."""
    wanted = None if predicates is None else frozenset(predicates)
    meta_lines: list[str] = []
    columns: list[str] | None = None
    mappings: list[Mapping] = []
    lineno = 0
    with open_text(Path(path)) as stream:
        try:
            for lineno, line in enumerate(stream, 1):
                if columns is None and line.startswith("#"):
                    meta_lines.append(line.rstrip("\r\n"))
                elif not line.strip() or line.startswith("#"):
                    continue
                elif columns is None:
                    columns = _header(path, lineno, line)
                else:
                    mapping = _row_mapping(path, lineno, columns, line.rstrip("\r\n").split("\t"))
                    if wanted is None or mapping.predicate_id in wanted:
                        mappings.append(mapping)
        except UnicodeDecodeError as exc:
            raise VocabularyError(f"{path}:{lineno + 1}: not UTF-8 ({exc.reason})") from exc
    if columns is None:
        raise VocabularyError(f"{path}: no header line (expected columns {', '.join(REQUIRED_COLUMNS)})")
    return _MappingSet(_metadata(path, meta_lines), mappings)


def load_sssom(path: Path, predicates: Iterable[str] | None = (EXACT_MATCH,)) -> list[Mapping]:
    """The mappings of an SSSOM TSV file with one of `predicates` (None: all of them)."""
    return _read(Path(path), predicates).mappings


def vocabulary_from_sssom(
    path: Path,
    source: str,
    semantic_types: tuple[str, ...] = (),
    predicates: Iterable[str] | None = (EXACT_MATCH,),
) -> Vocabulary:
    """Concepts from a mapping file alone, so that a mapping set can serve as a concept source.

    Each mapping gives a concept named by the subject label: its id is the object when that is a
    UMLS CUI (MONDO -> UMLS), else the subject id (MONDO -> MeSH, MONDO -> DOID), and the other id
    is an xref; an object label that differs from the name becomes a synonym. Rows naming the same
    concept id are combined. `source` names the subjects' vocabulary ("MONDO") and should be their
    id prefix, so `merge_vocabularies` can recognise the subject ids as the concepts' own.
    """
    mapping_set = _read(Path(path), predicates)
    by_id: dict[str, list[Concept]] = {}
    unnamed = 0
    for m in mapping_set.mappings:
        name = (m.subject_label or m.object_label or "").strip()
        if not name:
            unnamed += 1
            continue
        cui = cui_of(m.object_id)
        concept_id, xref = (cui, m.subject_id) if cui else (m.subject_id, m.object_id)
        synonyms = (m.object_label.strip(),) if m.object_label and m.object_label.strip() != name else ()
        concept = Concept(
            id=concept_id,
            name=name,
            semantic_types=semantic_types,
            synonyms=synonyms,
            xrefs=(xref,),
            sources=(source,),
        )
        by_id.setdefault(concept_id, []).append(concept)
    if unnamed:
        log.info("mappings without labels skipped", extra={"path": str(path), "count": unnamed})
    version = mapping_set.metadata.get("mapping_set_version") or mapping_set.metadata.get("mapping_set_id")
    return Vocabulary(
        version=str(version or Path(path).name),
        concepts=tuple(combine_concepts(cid, members) for cid, members in by_id.items()),
    )


class _IdentityGroups:
    """Union-find over normalised ids that keeps at most one UMLS CUI per group."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._cui: dict[str, str | None] = {}
        self.refused = 0

    def find(self, node: str) -> str:
        if node not in self._parent:
            self._parent[node] = node
            self._cui[node] = cui_of(node)
        root = node
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[node] != root:  # path compression
            self._parent[node], node = root, self._parent[node]
        return root

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return
        cui_a, cui_b = self._cui[root_a], self._cui[root_b]
        if cui_a and cui_b and cui_a != cui_b:
            self.refused += 1
            return
        self._parent[root_b] = root_a
        self._cui[root_a] = cui_a or cui_b

    def cui(self, node: str) -> str | None:
        return self._cui[self.find(node)]

    def members(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for node in self._parent:
            groups.setdefault(self.find(node), []).append(node)
        return groups


def _identities(concept: Concept) -> Iterator[str]:
    """The concept's id and its xrefs in its own sources' namespaces, normalised."""
    yield normalise_curie(concept.id)
    own = {s.upper() for s in concept.sources}
    for xref in concept.xrefs:
        if curie_prefix(xref).upper() in own:
            yield normalise_curie(xref)


def _group(vocabularies: list[Vocabulary], mappings: list[Mapping]) -> _IdentityGroups:
    groups = _IdentityGroups()
    for vocabulary in vocabularies:
        for concept in vocabulary.concepts:
            anchor = normalise_curie(concept.id)
            for identity in _identities(concept):
                groups.union(anchor, identity)
    for m in mappings:
        groups.union(normalise_curie(m.subject_id), normalise_curie(m.object_id))
    if groups.refused:
        log.warning("links refused: they would merge concepts with different CUIs", extra={"count": groups.refused})
    return groups


def merge_vocabularies(vocabularies: list[Vocabulary], mappings: list[Mapping]) -> Vocabulary:
    """One vocabulary in which concepts that mappings (or shared ids) say are the same are one concept;
    see the module docstring for the rule."""
    groups = _group(vocabularies, mappings)
    members: dict[str, list[Concept]] = {}
    for vocabulary in vocabularies:
        for concept in vocabulary.concepts:
            members.setdefault(groups.find(normalise_curie(concept.id)), []).append(concept)
    ids_in_group = groups.members()
    merged_id: dict[str, str] = {}
    concepts: list[Concept] = []
    for root, group in members.items():
        concept_id = groups.cui(root) or group[0].id
        merged_id[root] = concept_id
        mapped = sorted(i for i in ids_in_group[root] if cui_of(i) is None)
        concepts.append(combine_concepts(concept_id, group, extra_xrefs=mapped))

    relations: dict[Relation, None] = {}
    for vocabulary in vocabularies:
        for r in vocabulary.relations:
            source = merged_id[groups.find(normalise_curie(r.source))]
            target = merged_id[groups.find(normalise_curie(r.target))]
            if source != target:
                relations[Relation(source=source, type=r.type, target=target)] = None
    semantic_types = {k: v for vocabulary in vocabularies for k, v in vocabulary.semantic_types.items()}
    try:
        return Vocabulary(
            version=" + ".join(dict.fromkeys(v.version for v in vocabularies)) or "1",
            disclaimer=next((v.disclaimer for v in vocabularies if v.disclaimer), None),
            semantic_types=semantic_types,
            concepts=tuple(concepts),
            relations=tuple(relations),
        )
    except ValidationError as exc:
        raise VocabularyError(f"merged vocabulary: {exc.errors()[0]['msg']}") from exc

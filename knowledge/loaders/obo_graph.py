"""Load an ontology in OBO Graph JSON (gzipped or not), e.g. the Human Disease Ontology (DOID).

Rules, chosen for concept linking and for joining with UMLS-keyed vocabularies:

- Classes come from the file's first graph (the ontology itself; the others are its imports).
  Deprecated classes and classes without a label are skipped.
- Concept id: the UMLS CUI when the class has exactly one UMLS CUI xref ("UMLS_CUI:C0011860"),
  else the class's own id ("DOID:9351"). The class's own id is always kept in `xrefs`, with its
  other xrefs as written (minus the CUI used as id).
- Synonyms: exact synonyms only. Related synonyms are too loose to link on (DOID lists foreign
  names, broader terms and misspellings as related: "spinal cord cancer" for spinal cord lymphoma)
  and narrow synonyms name subtypes ("posterior polar cataract 4" for "cataract 11 multiple types").
  Single short capitalised tokens ("NIDDM") become abbreviations so the linker applies its case rules.
- Two or more classes whose single CUI is the same are merged into one concept with that CUI
  (`shared_cui="merge"`, the default): the name comes from the class that is not an is_a child of
  another class of the group, ties broken by the lower numeric id (the older class); the other
  labels become synonyms, all ids stay in xrefs, and relations between them disappear. DOID's CUI
  xrefs are not always exact (it gives C0031347 to both "alcohol dependence" and "pharynx cancer"),
  so `shared_cui="source_id"` keeps such classes apart under their own ids instead.
- Relations: is_a -> isa and has_symptom -> has_symptom (in DOID a `doid#has_symptom` edge from a
  disease to a SYMP class of the symptom ontology import). A relation whose target is a class of an
  imported graph (the SYMP symptoms) brings that class in as a concept of its own; edges touching
  deprecated or unknown classes are dropped.
- Semantic types: OBO ontologies have none. Every DOID (and MONDO) class is a disease, and
  T047 "Disease or Syndrome" is the UMLS type most of them carry, so they get T047 (neoplasms are
  T191 in the UMLS; we do not refine); SYMP classes get T184 "Sign or Symptom"; others none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from knowledge.loaders._common import combine_concepts, cui_of, dedupe, normalise_curie, open_text, split_terms
from knowledge.schema import Concept, Relation, RelationType, Vocabulary
from knowledge.vocabulary import VocabularyError

log = logging.getLogger(__name__)

# Edge predicates we keep, by their local name (after the last '#' or '/').
DEFAULT_PREDICATES: dict[str, RelationType] = {"is_a": "isa", "has_symptom": "has_symptom"}
KEPT_SYNONYMS = frozenset({"hasExactSynonym"})
SEMANTIC_TYPES_BY_PREFIX = {"DOID": "T047", "MONDO": "T047", "SYMP": "T184"}
SEMANTIC_TYPE_NAMES = {"T047": "Disease or Syndrome", "T184": "Sign or Symptom"}

SharedCui = Literal["merge", "source_id"]


@dataclass(frozen=True)
class _OboClass:
    """A class of the graph, as a concept under its own id, with its CUI xrefs."""

    concept: Concept
    cuis: tuple[str, ...]


def _read_json(path: Path) -> dict[str, Any]:
    """The parsed file; invalid JSON raises VocabularyError with the line and column."""
    with open_text(path) as stream:
        try:
            data = json.load(stream)
        except json.JSONDecodeError as exc:
            raise VocabularyError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from exc
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise VocabularyError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("graphs"), list) or not data["graphs"]:
        raise VocabularyError(f"{path}: not OBO Graph JSON (expected an object with a non-empty 'graphs' list)")
    return data


def _nodes(path: Path, graph: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    nodes = graph.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, dict) and isinstance(n.get("id"), str) for n in nodes):
        raise VocabularyError(f"{path}: graphs[{index}].nodes: expected a list of objects with a string 'id'")
    return nodes


def _current_class(node: Mapping[str, Any]) -> bool:
    meta = node.get("meta") or {}
    return node.get("type", "CLASS") == "CLASS" and bool(node.get("lbl")) and not meta.get("deprecated", False)


def _obo_class(node: Mapping[str, Any]) -> _OboClass:
    """A class under its own id: label as name, exact synonyms, xrefs as written, semantic type by prefix."""
    meta = node.get("meta") or {}
    own_id = normalise_curie(node["id"])
    name = str(node["lbl"]).strip()
    terms = [str(s["val"]) for s in meta.get("synonyms", []) if s.get("pred") in KEPT_SYNONYMS and s.get("val")]
    synonyms, abbreviations = split_terms(name, terms)
    xrefs = [str(x["val"]).strip() for x in meta.get("xrefs", []) if x.get("val")]
    prefix = own_id.partition(":")[0]
    semantic_type = SEMANTIC_TYPES_BY_PREFIX.get(prefix)
    concept = Concept(
        id=own_id,
        name=name,
        semantic_types=(semantic_type,) if semantic_type else (),
        synonyms=synonyms,
        abbreviations=abbreviations,
        xrefs=tuple(dedupe([own_id, *xrefs])),
        sources=(prefix,) if prefix else (),
    )
    return _OboClass(concept, tuple(dedupe(c for x in xrefs if (c := cui_of(x)))))


def _predicate(pred: str) -> str:
    """The local name of an edge predicate: "is_a", ".../doid#has_symptom" -> "has_symptom"."""
    return pred.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def _numeric(concept_id: str) -> tuple[int, str]:
    local = concept_id.partition(":")[2]
    return (int(local), concept_id) if local.isdigit() else (10**12, concept_id)


def _merge_group(cui: str, members: list[Concept], parent_of: set[tuple[str, str]]) -> Concept:
    """The concept for the classes given one concept id (usually one class): with several, the most general
    (not an is_a child of another member), then the oldest (lowest numeric id) gives the name."""
    ids = {m.id for m in members}
    ordered = sorted(members, key=lambda m: (any((m.id, o) in parent_of for o in ids), _numeric(m.id)))
    return combine_concepts(cui, ordered)


def _assign_ids(classes: list[_OboClass], shared_cui: SharedCui) -> dict[str, str]:
    """Concept id for each class id: its CUI when it has exactly one (and, unless merging, no other
    class has the same single CUI), else its own id."""
    users: dict[str, int] = {}
    for c in classes:
        if len(c.cuis) == 1:
            users[c.cuis[0]] = users.get(c.cuis[0], 0) + 1
    ids: dict[str, str] = {}
    for c in classes:
        single = c.cuis[0] if len(c.cuis) == 1 else None
        usable = single is not None and (shared_cui == "merge" or users[single] == 1)
        ids[c.concept.id] = single if usable and single else c.concept.id
    return ids


def _edges(path: Path, graph: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    """(subject id, predicate local name, object id) for each edge, ids normalised."""
    edges = graph.get("edges", [])
    if not isinstance(edges, list):
        raise VocabularyError(f"{path}: graphs[0].edges: expected a list")
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict) or not all(isinstance(edge.get(k), str) for k in ("sub", "pred", "obj")):
            raise VocabularyError(f"{path}: graphs[0].edges[{i}]: expected an object with 'sub', 'pred' and 'obj'")
        yield normalise_curie(edge["sub"]), _predicate(edge["pred"]), normalise_curie(edge["obj"])


def load_obo_graph_json(
    path: Path,
    *,
    predicates: Mapping[str, RelationType] = DEFAULT_PREDICATES,
    shared_cui: SharedCui = "merge",
) -> Vocabulary:
    """Concepts and relations from an OBO Graph JSON file; see the module docstring for the rules."""
    path = Path(path)
    data = _read_json(path)
    graphs = data["graphs"]
    main_nodes = _nodes(path, graphs[0], 0)
    classes = [_obo_class(n) for n in main_nodes if _current_class(n)]
    main_ids = {normalise_curie(n["id"]) for n in main_nodes}
    imported = {
        node_id: n
        for i, g in enumerate(graphs[1:], 1)
        for n in _nodes(path, g, i)
        if _current_class(n) and (node_id := normalise_curie(n["id"])) not in main_ids
    }
    edges = [e for e in _edges(path, graphs[0]) if e[1] in predicates]
    parent_of = {(s, o) for s, p, o in edges if predicates[p] == "isa"}

    concept_of = _assign_ids(classes, shared_cui)
    groups: dict[str, list[Concept]] = {}
    for c in classes:
        groups.setdefault(concept_of[c.concept.id], []).append(c.concept)
    concepts = {cid: _merge_group(cid, members, parent_of) for cid, members in groups.items()}

    relations: dict[Relation, None] = {}
    dropped = 0
    for sub, pred, obj in edges:
        source = concept_of.get(sub)
        if source is not None and obj not in concept_of and obj in imported:
            concept_of[obj] = obj
            concepts[obj] = _obo_class(imported[obj]).concept
        target = concept_of.get(obj)
        if source is None or target is None:
            dropped += 1
        elif source != target:
            relations[Relation(source=source, type=predicates[pred], target=target)] = None
    if dropped:
        log.info("edges to unknown or deprecated classes dropped", extra={"path": str(path), "count": dropped})
    used_types = {t for c in concepts.values() for t in c.semantic_types}
    version = (graphs[0].get("meta") or {}).get("version") or str(graphs[0].get("id", path.name))
    try:
        return Vocabulary(
            version=str(version),
            semantic_types={t: n for t, n in SEMANTIC_TYPE_NAMES.items() if t in used_types},
            concepts=tuple(concepts.values()),
            relations=tuple(relations),
        )
    except ValidationError as exc:
        raise VocabularyError(f"{path}: {exc.errors()[0]['msg']}") from exc

"""One vocabulary for the index from every configured source, each read by the loader its form calls for.

- `*.yaml` / `*.yml`: clinqa's own YAML vocabulary (corpus/demo/vocabulary.yaml);
- `*.json` / `*.json.gz`: an OBO Graph JSON ontology (the Human Disease Ontology);
- a folder holding `MRCONSO.RRF`: a UMLS Metathesaurus release;
- `*.sssom.tsv` (given as mappings): SSSOM tables that join concepts of several sources under one CUI;
- an abbreviation inventory folder (Wikipedia list and/or ADAM): its abbreviations are added to the
  concepts whose name or synonym is the abbreviation's long form, so "MS" becomes an abbreviation of
  both multiple sclerosis and mitral stenosis when the vocabulary has both, and the linker chooses
  between them from the other concepts of the text.

Several vocabularies, or any mappings, are merged with `merge_vocabularies`; the first vocabulary
given wins preferred names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from knowledge.loaders import (
    AbbreviationInventory,
    load_abbreviation_inventory,
    load_obo_graph_json,
    load_sssom,
    load_umls_rrf,
    merge_vocabularies,
)
from knowledge.schema import Concept, Vocabulary
from knowledge.vocabulary import VocabularyError, load_vocabulary

MIN_ABBREVIATION_COUNT = 20
"""ADAM senses seen fewer times than this in MEDLINE are not added (Wikipedia's curated senses always are)."""
_ABBREVIATION_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]{1,9}")


def vocabulary_kind(path: Path) -> str:
    """yaml, obo-json or umls-rrf; raises VocabularyError for anything else."""
    name = path.name.lower()
    if path.is_dir():
        if (path / "MRCONSO.RRF").is_file():
            return "umls-rrf"
        raise VocabularyError(f"{path}: a folder vocabulary must hold MRCONSO.RRF (a UMLS release)")
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith((".json", ".json.gz")):
        return "obo-json"
    raise VocabularyError(f"{path}: unknown vocabulary format (expected .yaml, .json[.gz] or a UMLS RRF folder)")


def load_vocabulary_source(path: Path) -> Vocabulary:
    """One vocabulary file or folder, read by the loader its form calls for."""
    if not path.exists():
        raise VocabularyError(f"{path}: no such file or folder")
    kind = vocabulary_kind(path)
    if kind == "umls-rrf":
        return load_umls_rrf(path)
    if kind == "obo-json":
        return load_obo_graph_json(path)
    return load_vocabulary(path)


def _key(term: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", term.casefold()))


def add_inventory_abbreviations(
    vocabulary: Vocabulary, inventory: AbbreviationInventory, min_count: int = MIN_ABBREVIATION_COUNT
) -> tuple[Vocabulary, int]:
    """The vocabulary with the inventory's abbreviations added to the concepts their long forms name
    (matched on a concept's name or synonyms, ignoring case and punctuation), and how many were added.
    A long form naming several concepts adds to none: the inventory cannot say which one is meant."""
    by_form: dict[str, set[str]] = {}
    for concept in vocabulary.concepts:
        for form in (concept.name, *concept.synonyms):
            by_form.setdefault(_key(form), set()).add(concept.id)
    added: dict[str, list[str]] = {}
    for abbreviation, senses in inventory.items():
        if not _ABBREVIATION_RE.fullmatch(abbreviation):
            continue
        for sense in senses:
            if sense.count is not None and sense.count < min_count:
                continue
            ids = by_form.get(_key(sense.long_form), set())
            if len(ids) == 1:
                added.setdefault(next(iter(ids)), []).append(abbreviation)
    count = 0
    concepts: list[Concept] = []
    for concept in vocabulary.concepts:
        have = {*concept.abbreviations, *(s.casefold() for s in concept.synonyms), concept.name.casefold()}
        new = [a for a in dict.fromkeys(added.get(concept.id, ())) if a not in have and a.casefold() not in have]
        count += len(new)
        concepts.append(
            concept.model_copy(update={"abbreviations": (*concept.abbreviations, *new)}) if new else concept
        )
    return vocabulary.model_copy(update={"concepts": tuple(concepts)}), count


def load_knowledge(
    vocabularies: Sequence[Path],
    mappings: Sequence[Path] = (),
    abbreviations: Path | None = None,
    min_abbreviation_count: int = MIN_ABBREVIATION_COUNT,
) -> Vocabulary:
    """The index's vocabulary: every source loaded, merged through the mappings, abbreviations added."""
    loaded = [load_vocabulary_source(Path(p)) for p in vocabularies]
    if not loaded:
        return Vocabulary()
    links = [m for path in mappings for m in load_sssom(Path(path))]
    vocabulary = merge_vocabularies(loaded, links) if len(loaded) > 1 or links else loaded[0]
    if abbreviations is not None:
        inventory = load_abbreviation_inventory(Path(abbreviations))
        vocabulary, _ = add_inventory_abbreviations(vocabulary, inventory, min_abbreviation_count)
    return vocabulary

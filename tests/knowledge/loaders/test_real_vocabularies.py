"""The loaders on the real public vocabularies in the shared data folder (skipped when it is absent).

Expected counts come from the data folder's README: the 2018 Disease Ontology has 11,305 classes,
8,906 of them current, 5,947 with a UMLS CUI xref, 10,175 is_a and 254 has_symptom edges; MONDO maps
~21.6k classes to UMLS CUIs, ~8.2k to MeSH and ~12k to DOID.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from knowledge.loaders import (
    load_abbreviation_inventory,
    load_obo_graph_json,
    load_sssom,
    merge_vocabularies,
    vocabulary_from_sssom,
)
from knowledge.loaders._common import CUI_RE
from knowledge.schema import Vocabulary

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~15 s in all

DATA = Path(os.environ.get("CLINQA_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))
ONTOLOGY = DATA / "ontology"
DOID_JSON = ONTOLOGY / "doid-2018-07-05.json.gz"
MONDO_UMLS = ONTOLOGY / "mondo_exactmatch_umls.sssom.tsv"
MONDO_MESH = ONTOLOGY / "mondo_exactmatch_mesh.sssom.tsv"
MONDO_DOID = ONTOLOGY / "mondo_exactmatch_doid.sssom.tsv"


def need(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"shared data not found ({', '.join(missing)}); set CLINQA_DATA to the data folder")


def doid_ids(vocab: Vocabulary) -> list[str]:
    """Every DOID class id the vocabulary covers, as concept id or xref."""
    return [c.id for c in vocab.concepts if c.id.startswith("DOID:")] + [
        x for c in vocab.concepts for x in c.xrefs if x.startswith("DOID:")
    ]


@pytest.fixture(scope="module")
def doid() -> Vocabulary:
    need(DOID_JSON)
    return load_obo_graph_json(DOID_JSON)


@pytest.fixture(scope="module")
def mondo_umls() -> Vocabulary:
    need(MONDO_UMLS)
    return vocabulary_from_sssom(MONDO_UMLS, "MONDO", ("T047",))


def test_disease_ontology_counts(doid):
    ids = doid_ids(doid)
    assert len(ids) == len(set(ids)) == 8_906  # every current class exactly once
    by_source = Counter(c.sources for c in doid.concepts)
    assert by_source[("SYMP",)] == 87  # the symptoms has_symptom edges point to
    assert 8_850 <= by_source[("DOID",)] <= 8_906  # a few classes share a CUI and are merged
    relations = Counter(r.type for r in doid.relations)
    assert 10_100 <= relations["isa"] <= 10_175
    assert 250 <= relations["has_symptom"] <= 254
    cui_ids = sum(1 for c in doid.concepts if CUI_RE.fullmatch(c.id))
    assert 5_400 <= cui_ids <= 5_947
    terms = sum(len(c.synonyms) + len(c.abbreviations) for c in doid.concepts)
    assert 12_000 <= terms <= 13_881  # exact synonyms only (13,881 of the 14,396)


def test_disease_ontology_known_concept(doid):
    t2dm = next(c for c in doid.concepts if c.id == "C0011860")
    assert t2dm.name == "type 2 diabetes mellitus"
    assert "DOID:9352" in t2dm.xrefs and "NIDDM" in t2dm.abbreviations
    assert t2dm.semantic_types == ("T047",)


def test_disease_ontology_classes_kept_apart():
    need(DOID_JSON)
    vocab = load_obo_graph_json(DOID_JSON, shared_cui="source_id")
    relations = Counter(r.type for r in vocab.relations)
    # 10,175 is_a edges less 3 that touch deprecated or non-DOID classes
    assert (relations["isa"], relations["has_symptom"]) == (10_172, 254)
    with_cui = [c for c in vocab.concepts if CUI_RE.fullmatch(c.id) or any("UMLS_CUI:" in x for x in c.xrefs)]
    assert len(with_cui) == 5_947


def test_mondo_mappings(mondo_umls):
    need(MONDO_MESH, MONDO_DOID)
    assert 21_000 <= len(load_sssom(MONDO_UMLS)) <= 22_500
    assert 8_000 <= len(load_sssom(MONDO_MESH)) <= 8_500
    assert 11_500 <= len(load_sssom(MONDO_DOID)) <= 12_500
    assert 21_000 <= len(mondo_umls.concepts) <= 22_500
    assert all(CUI_RE.fullmatch(c.id) for c in mondo_umls.concepts)


def test_merged_disease_vocabulary(doid, mondo_umls):
    need(MONDO_MESH, MONDO_DOID)
    mappings = load_sssom(MONDO_UMLS) + load_sssom(MONDO_MESH) + load_sssom(MONDO_DOID)
    merged = merge_vocabularies([doid, mondo_umls], mappings)
    assert max(len(doid.concepts), len(mondo_umls.concepts)) < len(merged.concepts)
    assert len(merged.concepts) < len(doid.concepts) + len(mondo_umls.concepts) - 5_000  # thousands unified
    both = [c for c in merged.concepts if set(c.sources) >= {"DOID", "MONDO"}]
    assert len(both) > 5_000
    t2dm = next(c for c in merged.concepts if c.id == "C0011860")
    assert {"DOID:9352", "MONDO:0005148"} <= set(t2dm.xrefs)
    assert any(x.startswith("MESH:") for x in t2dm.xrefs)
    ids = doid_ids(merged)
    # no DOID class lost or split; MONDO (2026) also brings DOID ids newer than the 2018 file
    assert len(ids) == len(set(ids)) and set(ids) >= set(doid_ids(doid))


def test_abbreviation_inventory():
    need(DATA / "abbreviations" / "adam_database", DATA / "abbreviations" / "wikipedia_abbreviation_database.csv")
    inventory = load_abbreviation_inventory(DATA / "abbreviations")
    assert len(inventory) > 40_000
    long_forms = [s.long_form.casefold() for s in inventory.senses("COPD")]
    assert long_forms[0] == "chronic obstructive pulmonary disease"
    assert {s.source for s in inventory.senses("AF")} == {"Wikipedia", "ADAM"}

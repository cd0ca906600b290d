"""SSSOM mapping files, concepts from mappings, and merging vocabularies through mappings."""

import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.loaders.sssom import Mapping, load_sssom, merge_vocabularies, vocabulary_from_sssom
from knowledge.schema import Concept, Relation, Vocabulary
from knowledge.vocabulary import VocabularyError

pytestmark = pytest.mark.unit

METADATA = """\
# curie_map:
#   MONDO: http://purl.obolibrary.org/obo/MONDO_
#   UMLS: http://linkedlifedata.com/resource/umls/id/
#   skos: http://www.w3.org/2004/02/skos/core#
# license: https://creativecommons.org/publicdomain/zero/1.0/
# mapping_set_id: http://example.org/mondo_exactmatch_umls.sssom.tsv
# mapping_set_version: http://example.org/releases/2026-01-01/mondo_exactmatch_umls.sssom.tsv
"""
UMLS_TSV = METADATA + (
    "subject_id\tsubject_label\tpredicate_id\tobject_id\tmapping_justification\n"
    "MONDO:0005148\ttype 2 diabetes mellitus\tskos:exactMatch\tUMLS:C0011860\tsemapv:ManualMappingCuration\n"
    "MONDO:0005015\tdiabetes mellitus\tskos:exactMatch\tUMLS:C0011849\tsemapv:ManualMappingCuration\n"
    "MONDO:0011122\tobesity\tskos:closeMatch\tUMLS:C0028754\tsemapv:ManualMappingCuration\n"
)
DOID_TSV = (
    "# mapping_set_id: http://example.org/mondo_exactmatch_doid.sssom.tsv\n"
    "subject_id\tsubject_label\tpredicate_id\tobject_id\tobject_label\tmapping_justification\n"
    "MONDO:0005148\ttype 2 diabetes mellitus\tskos:exactMatch\tDOID:9352\ttype 2 diabetes mellitus\tsemapv:x\n"
    "MONDO:0005015\tdiabetes mellitus\tskos:exactMatch\tDOID:9351\tdiabetes mellitus\tsemapv:x\n"
    "MONDO:0004979\tasthma\tskos:exactMatch\tDOID:2841\tasthma (disorder)\tsemapv:x\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def by_id(vocab):
    return {c.id: c for c in vocab.concepts}


def test_load_keeps_exact_matches(tmp_path):
    path = write(tmp_path, "umls.sssom.tsv", UMLS_TSV)
    mappings = load_sssom(path)
    assert mappings == [
        Mapping(
            "MONDO:0005148",
            "skos:exactMatch",
            "UMLS:C0011860",
            "type 2 diabetes mellitus",
            None,
            "semapv:ManualMappingCuration",
        ),
        Mapping(
            "MONDO:0005015",
            "skos:exactMatch",
            "UMLS:C0011849",
            "diabetes mellitus",
            None,
            "semapv:ManualMappingCuration",
        ),
    ]
    assert len(load_sssom(path, predicates=None)) == 3


def test_header_only(tmp_path):
    path = write(tmp_path, "empty.sssom.tsv", METADATA + "subject_id\tpredicate_id\tobject_id\n")
    assert load_sssom(path) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (UMLS_TSV + "MONDO:1\tx\tskos:exactMatch\tUMLS:C0000001\n", r":12: expected 5 tab-separated columns, got 4"),
        (UMLS_TSV + "MONDO:1\tx\tskos:exactMatch\t\tsemapv:x\n", r":12: empty object_id"),
        (METADATA + "subject_id\tsubject_label\tobject_id\n", r":8: header lacks column\(s\) predicate_id"),
        (METADATA, r": no header line"),
        ("# curie_map: [unclosed\nsubject_id\tpredicate_id\tobject_id\n", r": invalid metadata block"),
    ],
)
def test_malformed_files(tmp_path, text, problem):
    path = write(tmp_path, "bad.sssom.tsv", text)
    with pytest.raises(VocabularyError, match=rf"bad\.sssom\.tsv{problem}"):
        load_sssom(path)


def test_vocabulary_from_sssom(tmp_path):
    umls = vocabulary_from_sssom(write(tmp_path, "umls.sssom.tsv", UMLS_TSV), "MONDO")
    assert umls.version == "http://example.org/releases/2026-01-01/mondo_exactmatch_umls.sssom.tsv"
    assert umls.concepts[0] == Concept(
        id="C0011860", name="type 2 diabetes mellitus", xrefs=("MONDO:0005148",), sources=("MONDO",)
    )
    doid = by_id(vocabulary_from_sssom(write(tmp_path, "doid.sssom.tsv", DOID_TSV), "MONDO", ("T047",)))
    asthma = doid["MONDO:0004979"]  # object not a CUI: the subject is the concept
    assert (asthma.synonyms, asthma.xrefs, asthma.semantic_types) == (("asthma (disorder)",), ("DOID:2841",), ("T047",))


def doid_like() -> Vocabulary:
    return Vocabulary(
        version="doid",
        semantic_types={"T047": "Disease or Syndrome"},
        concepts=(
            Concept(
                id="C0011849",
                name="diabetes mellitus",
                semantic_types=("T047",),
                xrefs=("DOID:9351",),
                sources=("DOID",),
            ),
            Concept(
                id="DOID:9352",
                name="type 2 diabetes mellitus",
                synonyms=("type II diabetes mellitus",),
                abbreviations=("NIDDM",),
                xrefs=("UMLS_CUI:C0011860", "UMLS_CUI:C1234567", "ICD10CM:E11"),
                sources=("DOID",),
            ),
            Concept(id="DOID:2841", name="asthma", xrefs=("ICD10CM:E11",), sources=("DOID",)),
        ),
        relations=(Relation(source="DOID:9352", type="isa", target="C0011849"),),
    )


def test_merge_unifies_through_mappings(tmp_path):
    umls_path = write(tmp_path, "umls.sssom.tsv", UMLS_TSV)
    mappings = load_sssom(umls_path) + load_sssom(write(tmp_path, "doid.sssom.tsv", DOID_TSV))
    merged = merge_vocabularies([doid_like(), vocabulary_from_sssom(umls_path, "MONDO")], mappings)
    concepts = by_id(merged)
    assert list(concepts) == ["C0011849", "C0011860", "DOID:2841"]
    t2dm = concepts["C0011860"]  # DOID:9352 -> MONDO:0005148 -> UMLS:C0011860
    assert t2dm.name == "type 2 diabetes mellitus"
    assert t2dm.synonyms == ("type II diabetes mellitus",) and t2dm.abbreviations == ("NIDDM",)
    assert set(t2dm.xrefs) >= {"DOID:9352", "MONDO:0005148", "UMLS_CUI:C1234567", "ICD10CM:E11"}
    assert "UMLS_CUI:C0011860" not in t2dm.xrefs
    assert t2dm.sources == ("DOID", "MONDO")
    assert concepts["C0011849"].semantic_types == ("T047",)
    # a shared ICD code is not an identity: asthma stays apart, joined only to its MONDO id
    assert concepts["DOID:2841"].xrefs == ("ICD10CM:E11", "MONDO:0004979")
    assert merged.relations == (Relation(source="C0011860", type="isa", target="C0011849"),)
    assert merged.version == "doid + http://example.org/releases/2026-01-01/mondo_exactmatch_umls.sssom.tsv"
    assert merged.semantic_types == {"T047": "Disease or Syndrome"}


def test_merge_refuses_links_between_different_cuis(tmp_path, caplog):
    umls_path = write(tmp_path, "umls.sssom.tsv", UMLS_TSV)
    wrong = [Mapping("MONDO:0005148", "skos:exactMatch", "UMLS:C0011849")]
    with caplog.at_level(logging.WARNING, logger="knowledge.loaders.sssom"):
        merged = merge_vocabularies([vocabulary_from_sssom(umls_path, "MONDO")], wrong)
    assert [c.id for c in merged.concepts] == ["C0011860", "C0011849"]
    assert "links refused" in caplog.text


def test_merge_drops_loops_and_duplicate_relations():
    a = Vocabulary(
        concepts=(
            Concept(id="DOID:1", name="one", sources=("DOID",)),
            Concept(id="DOID:2", name="two", sources=("DOID",)),
            Concept(id="DOID:3", name="three", sources=("DOID",)),
        ),
        relations=(
            Relation(source="DOID:1", type="isa", target="DOID:2"),
            Relation(source="DOID:1", type="isa", target="DOID:3"),
            Relation(source="DOID:2", type="isa", target="DOID:3"),
        ),
    )
    merged = merge_vocabularies([a], [Mapping("DOID:1", "skos:exactMatch", "DOID:2")])
    assert [(c.id, c.synonyms) for c in merged.concepts] == [("DOID:1", ("two",)), ("DOID:3", ())]
    assert merged.relations == (Relation(source="DOID:1", type="isa", target="DOID:3"),)


def test_merge_nothing():
    assert merge_vocabularies([], []).concepts == ()


curie = st.from_regex(r"[A-Z]{2,5}:[0-9A-Za-z_.]{1,10}", fullmatch=True)
label = st.text(st.characters(blacklist_characters="\t\r\n", blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(curie, label, curie), max_size=8))
def test_sssom_round_trip(rows):
    text = "# mapping_set_id: http://example.org/x\nsubject_id\tsubject_label\tpredicate_id\tobject_id\n"
    text += "".join(f"{s}\t{lab}\tskos:exactMatch\t{o}\n" for s, lab, o in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.sssom.tsv"
        path.write_text(text, encoding="utf-8")
        loaded = load_sssom(path)
    assert loaded == [Mapping(s, "skos:exactMatch", o, lab or None) for s, lab, o in rows]

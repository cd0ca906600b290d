"""OBO Graph JSON loader on a tiny Disease-Ontology-shaped file written by the tests."""

import gzip
import json
from pathlib import Path

import pytest

from knowledge.loaders.obo_graph import load_obo_graph_json
from knowledge.schema import Relation
from knowledge.vocabulary import VocabularyError

pytestmark = pytest.mark.unit

OBO = "http://purl.obolibrary.org/obo/"


def node(local, label, xrefs=(), synonyms=(), deprecated=False, node_type="CLASS"):
    meta = {"xrefs": [{"val": x} for x in xrefs], "synonyms": [{"pred": p, "val": v, "xrefs": []} for p, v in synonyms]}
    if deprecated:
        meta["deprecated"] = True
    return {"id": OBO + local, "type": node_type, "lbl": label, "meta": meta}


def edge(sub, pred, obj):
    return {"sub": OBO + sub, "pred": pred, "obj": OBO + obj}


HAS_SYMPTOM = "http://purl.obolibrary.org/obo/doid#has_symptom"

DOID = {
    "graphs": [
        {
            "id": OBO + "doid.owl",
            "meta": {"version": OBO + "doid/releases/2018-07-05/doid.owl"},
            "nodes": [
                node("DOID_4", "disease"),
                node(
                    "DOID_9351",
                    "diabetes mellitus",
                    xrefs=["UMLS_CUI:C0011849", "MESH:D003920"],
                    synonyms=[("hasExactSynonym", "diabetes"), ("hasRelatedSynonym", "sugar disease")],
                ),
                node(
                    "DOID_9352",
                    "type 2 diabetes mellitus",
                    xrefs=["UMLS_CUI:C0011860", "ICD10CM:E11"],
                    synonyms=[
                        ("hasExactSynonym", "type II diabetes mellitus"),
                        ("hasExactSynonym", "NIDDM"),
                        ("hasExactSynonym", "Type 2 Diabetes Mellitus"),
                        ("hasNarrowSynonym", "maturity-onset diabetes of the young"),
                    ],
                ),
                node(
                    "DOID_8778", "Crohn's disease", xrefs=[" UMLS_CUI:C0156147"], synonyms=[("hasExactSynonym", "CD")]
                ),
                node("DOID_0060192", "Crohn's colitis", xrefs=["UMLS_CUI:C0156147"]),
                node("DOID_0050741", "alcohol dependence", xrefs=["UMLS_CUI:C0001973", "UMLS_CUI:C0085762"]),
                node("DOID_8718", "carcinoma in situ of respiratory system", deprecated=True),
                node("doid#has_symptom", "has_symptom", node_type="PROPERTY"),
            ],
            "edges": [
                edge("DOID_9351", "is_a", "DOID_4"),
                edge("DOID_9352", "is_a", "DOID_9351"),
                edge("DOID_0060192", "is_a", "DOID_8778"),
                edge("DOID_8778", "is_a", "DOID_4"),
                edge("DOID_0050741", "is_a", "DOID_4"),
                edge("DOID_8718", "is_a", "DOID_4"),
                edge("DOID_9351", HAS_SYMPTOM, "SYMP_0000759"),
                edge("DOID_9351", OBO + "RO_0002200", "HP_0000001"),
            ],
        },
        {
            "id": OBO + "doid/imports/symp_import.owl",
            "nodes": [node("SYMP_0000759", "polyuria"), node("SYMP_0019177", "fever")],
            "edges": [edge("SYMP_0000759", "is_a", "SYMP_0019177")],
        },
    ]
}


@pytest.fixture(params=["plain", "gzip"])
def doid_file(request, tmp_path: Path) -> Path:
    text = json.dumps(DOID)
    if request.param == "gzip":
        path = tmp_path / "doid.json.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = tmp_path / "doid.json"
        path.write_text(text, encoding="utf-8")
    return path


def by_id(vocab):
    return {c.id: c for c in vocab.concepts}


def test_concepts_ids_names_and_synonyms(doid_file):
    vocab = load_obo_graph_json(doid_file)
    concepts = by_id(vocab)
    assert vocab.version.endswith("2018-07-05/doid.owl")
    # deprecated class and property node skipped; only the symptom used by an edge is imported
    assert list(concepts) == ["DOID:4", "C0011849", "C0011860", "C0156147", "DOID:0050741", "SYMP:0000759"]
    t2dm = concepts["C0011860"]
    assert t2dm.name == "type 2 diabetes mellitus"
    assert t2dm.synonyms == ("type II diabetes mellitus",)  # narrow dropped, case duplicate of the name dropped
    assert t2dm.abbreviations == ("NIDDM",)
    assert t2dm.xrefs == ("DOID:9352", "ICD10CM:E11")  # own id kept, the CUI used as id not repeated
    assert t2dm.semantic_types == ("T047",) and t2dm.sources == ("DOID",)
    assert concepts["C0011849"].synonyms == ("diabetes",)  # related synonym dropped
    assert concepts["DOID:0050741"].xrefs == ("UMLS_CUI:C0001973", "UMLS_CUI:C0085762")  # two CUIs: own id
    symptom = concepts["SYMP:0000759"]
    assert (symptom.name, symptom.semantic_types, symptom.sources) == ("polyuria", ("T184",), ("SYMP",))
    assert vocab.semantic_types == {"T047": "Disease or Syndrome", "T184": "Sign or Symptom"}


def test_classes_sharing_a_cui_are_merged(doid_file):
    crohn = by_id(load_obo_graph_json(doid_file))["C0156147"]
    assert crohn.name == "Crohn's disease"  # the parent names the merged concept
    assert crohn.synonyms == ("Crohn's colitis",)
    assert crohn.abbreviations == ("CD",)
    assert crohn.xrefs == ("DOID:8778", "DOID:0060192")


def test_relations(doid_file):
    assert set(load_obo_graph_json(doid_file).relations) == {
        Relation(source="C0011849", type="isa", target="DOID:4"),
        Relation(source="C0011860", type="isa", target="C0011849"),
        Relation(source="C0156147", type="isa", target="DOID:4"),  # the colitis -> disease is_a became a loop
        Relation(source="DOID:0050741", type="isa", target="DOID:4"),
        Relation(source="C0011849", type="has_symptom", target="SYMP:0000759"),
    }


def test_shared_cui_can_keep_classes_apart(doid_file):
    vocab = load_obo_graph_json(doid_file, shared_cui="source_id")
    concepts = by_id(vocab)
    assert "C0156147" not in concepts
    assert concepts["DOID:0060192"].xrefs == ("UMLS_CUI:C0156147",)
    assert Relation(source="DOID:0060192", type="isa", target="DOID:8778") in vocab.relations


def test_empty_graph(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"graphs": [{"id": "x", "nodes": [], "edges": []}]}))
    vocab = load_obo_graph_json(path)
    assert vocab.concepts == () and vocab.relations == ()


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "graphs": [\n    {"nodes": [oops]}\n  ]\n}\n')
    with pytest.raises(VocabularyError, match=r"bad\.json:3: invalid JSON"):
        load_obo_graph_json(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"nodes": []}, "not OBO Graph JSON"),
        ({"graphs": [{"nodes": [{"lbl": "no id"}]}]}, r"graphs\[0\]\.nodes"),
        ({"graphs": [{"nodes": [], "edges": [{"sub": "a"}]}]}, r"graphs\[0\]\.edges\[0\]"),
    ],
)
def test_malformed_structure(tmp_path, content, problem):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(content))
    with pytest.raises(VocabularyError, match=rf"odd\.json: {problem}"):
        load_obo_graph_json(path)


def test_missing_file(tmp_path):
    with pytest.raises(VocabularyError, match="cannot read"):
        load_obo_graph_json(tmp_path / "nope.json")

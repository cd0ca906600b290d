"""Vocabulary sources: dispatch by form, merging through SSSOM, abbreviations from an inventory."""

import json
from pathlib import Path

import pytest

from knowledge.loaders import load_abbreviation_inventory
from knowledge.loaders.abbreviations import ADAM_FILE, WIKIPEDIA_FILE
from knowledge.schema import Concept, Vocabulary
from knowledge.sources import add_inventory_abbreviations, load_knowledge, load_vocabulary_source, vocabulary_kind
from knowledge.vocabulary import VocabularyError
from tests.conftest import data_dir
from tests.knowledge.loaders.test_obo_graph import DOID
from tests.knowledge.loaders.test_sssom import DOID_TSV
from tests.knowledge.loaders.test_umls_rrf import write_release

pytestmark = pytest.mark.unit

YAML = """\
version: "t1"
concepts:
  - id: "C0011860"
    name: "Type 2 diabetes"
    synonyms: ["T2DM"]
  - id: "C0026269"
    name: "Mitral valve stenosis"
    synonyms: ["mitral stenosis"]
  - id: "C0026769"
    name: "Multiple sclerosis"
  - id: "C0004238"
    name: "Atrial fibrillation"
relations:
  - {source: "C0026269", type: "related_to", target: "C0004238"}
"""


def test_kind_by_form(tmp_path):
    (tmp_path / "v.yaml").write_text(YAML)
    (tmp_path / "do.json.gz").write_bytes(b"")
    release = write_release(tmp_path / "umls")
    assert vocabulary_kind(tmp_path / "v.yaml") == "yaml"
    assert vocabulary_kind(tmp_path / "do.json.gz") == "obo-json"
    assert vocabulary_kind(release) == "umls-rrf"
    assert load_vocabulary_source(release).version.startswith("UMLS ")
    with pytest.raises(VocabularyError, match="unknown vocabulary format"):
        vocabulary_kind(tmp_path / "terms.csv")
    with pytest.raises(VocabularyError, match=r"MRCONSO\.RRF"):
        vocabulary_kind(tmp_path)
    with pytest.raises(VocabularyError, match="no such file"):
        load_vocabulary_source(tmp_path / "missing.yaml")


def test_yaml_and_obo_merge_under_one_cui_through_sssom(tmp_path):
    (tmp_path / "v.yaml").write_text(YAML)
    (tmp_path / "doid.json").write_text(json.dumps(DOID))
    (tmp_path / "mondo_doid.sssom.tsv").write_text(DOID_TSV)
    merged = load_knowledge([tmp_path / "v.yaml", tmp_path / "doid.json"], [tmp_path / "mondo_doid.sssom.tsv"])
    by_id = {c.id: c for c in merged.concepts}
    t2d = by_id["C0011860"]
    assert t2d.name == "Type 2 diabetes"  # the first vocabulary wins the name
    assert "type 2 diabetes mellitus" in t2d.synonyms and "NIDDM" in t2d.abbreviations
    assert "DOID:9352" in t2d.xrefs
    assert not any(c.id == "DOID:9352" for c in merged.concepts)


def write_inventory(tmp_path: Path) -> Path:
    folder = tmp_path / "abbreviations"
    folder.mkdir()
    (folder / WIKIPEDIA_FILE).write_text(
        '"abr","long_form"\n"MS","mitral stenosis"\n"MS","multiple sclerosis"\n"AF","atrial fibrillation"\n'
        '"DM2","type 2 diabetes"\n"ms","millisecond"\n'
    )
    (folder / ADAM_FILE).write_text(
        "# comment\nT2D\tT2D:900\ttype 2 diabetes:900:0.9\t0.9\t900\nTIIDM\tTIIDM:3\ttype 2 diabetes:3:0.9\t0.9\t3\n"
    )
    return folder


def test_inventory_adds_abbreviations_to_the_concepts_its_long_forms_name(tmp_path):
    (tmp_path / "v.yaml").write_text(YAML)
    vocabulary = load_knowledge([tmp_path / "v.yaml"])
    inventory = load_abbreviation_inventory(write_inventory(tmp_path))
    augmented, added = add_inventory_abbreviations(vocabulary, inventory)
    by_id = {c.id: c for c in augmented.concepts}
    assert by_id["C0026269"].abbreviations == ("MS",)  # through the synonym "mitral stenosis"
    assert by_id["C0026769"].abbreviations == ("MS",)
    assert by_id["C0004238"].abbreviations == ("AF",)
    # ADAM's rare spelling (3 sightings) stays out; the frequent one comes in.
    assert by_id["C0011860"].abbreviations == ("DM2", "T2D")
    assert added == 5
    # An abbreviation already among the synonyms is not repeated.
    again, more = add_inventory_abbreviations(augmented, inventory)
    assert more == 0 and again == augmented


def test_a_long_form_naming_two_concepts_adds_to_neither():
    twins = Vocabulary(
        concepts=(
            Concept(id="A", name="Cold", synonyms=("common cold",)),
            Concept(id="B", name="Common cold"),
        )
    )
    from knowledge.loaders import AbbreviationInventory, AbbreviationSense

    inventory = AbbreviationInventory({"CC": [AbbreviationSense("common cold", None, "Wikipedia")]})
    assert add_inventory_abbreviations(twins, inventory) == (twins, 0)


def test_real_disease_ontology_mondo_and_inventory():
    data = data_dir()
    doid = data / "ontology" / "doid-2018-07-05.json.gz"
    if not doid.is_file():
        pytest.skip(f"shared data not found at {data} (set CLINQA_DATA)")
    vocabulary = load_knowledge(
        [Path("corpus/demo/vocabulary.yaml"), doid],
        [data / "ontology" / "mondo_exactmatch_doid.sssom.tsv", data / "ontology" / "mondo_exactmatch_umls.sssom.tsv"],
        data / "abbreviations",
    )
    by_id = {c.id: c for c in vocabulary.concepts}
    assert len(vocabulary.concepts) > 9000
    assert by_id["C0004238"].name == "Atrial fibrillation" and "DOID:0060224" in by_id["C0004238"].xrefs
    assert "MS" in by_id["C0026769"].abbreviations and "MS" in by_id["C0026269"].abbreviations

"""Abbreviation sense inventories: the Wikipedia CSV and the ADAM database, in tiny copies the tests write."""

from pathlib import Path

import pytest

from knowledge.loaders.abbreviations import (
    ADAM_FILE,
    WIKIPEDIA_FILE,
    AbbreviationInventory,
    AbbreviationSense,
    load_abbreviation_inventory,
    parse_adam_line,
)
from knowledge.vocabulary import VocabularyError

pytestmark = pytest.mark.unit

WIKIPEDIA = """\
"abr","long_form"
"AF","atrial fibrillation"
"AF","atrial flutter"
"AF","Atrial fibrillation"
"MI","myocardial infarction"
"ā","before"
"""
ADAM = (
    "##########################################################\n"
    "# OVERVIEW                                               #\n"
    "# \t    Column 1: Preferred abbreviation                  #\n"
    "##########################################################\n"
    "AF\tAF:2682|Af:49|af:7\tatrial fibrillation:2738:0.9908\t0.9908\t2738\n"
    "AF\tAF:481\tAmniotic fluid:481:0.8997\t0.8997\t481\n"
    "AF\tAF:89\taflatoxin:68:0.0138|aflatoxins:21:0.0041\t0.0138\t89\n"
    "MI\tMI:340\tmitotic index:340:0.5182\t0.5182\t340\n"
    "(1)H-MRS\t(1)H-MRS:55|(1)HMRS:1\tproton magnetic resonance spectroscopy:56:0.8254\t0.8254\t56\n"
)


def wiki(long_form):
    return AbbreviationSense(long_form, None, "Wikipedia")


def adam(long_form, count):
    return AbbreviationSense(long_form, count, "ADAM")


@pytest.fixture
def inventory_dir(tmp_path: Path) -> Path:
    (tmp_path / WIKIPEDIA_FILE).write_text(WIKIPEDIA, encoding="utf-8")
    (tmp_path / ADAM_FILE).write_text(ADAM, encoding="utf-8")
    return tmp_path


def test_both_sources_deduplicated_and_ordered(inventory_dir):
    inventory = load_abbreviation_inventory(inventory_dir)
    assert inventory["AF"] == (
        wiki("atrial fibrillation"),  # the case-variant duplicate line is gone
        wiki("atrial flutter"),
        adam("atrial fibrillation", 2682),
        adam("Amniotic fluid", 481),
        adam("aflatoxin", 89),  # the most frequent long-form variant names the sense
    )
    assert inventory["Af"] == (adam("atrial fibrillation", 49),)
    assert inventory["(1)HMRS"] == (adam("proton magnetic resonance spectroscopy", 1),)
    assert inventory["ā"] == (wiki("before"),)
    assert len(inventory) == 7 and "af" in inventory


def test_senses_case_sensitive_first_then_any_case(inventory_dir):
    inventory = load_abbreviation_inventory(inventory_dir)
    assert inventory.senses("af") == [adam("atrial fibrillation", 7)]  # written so in MEDLINE
    assert inventory.senses("aF") == [
        wiki("atrial fibrillation"),
        wiki("atrial flutter"),
        adam("atrial fibrillation", 2738),  # AF + Af + af
        adam("Amniotic fluid", 481),
        adam("aflatoxin", 89),
    ]
    assert inventory.senses("mi")[0] == wiki("myocardial infarction")
    assert inventory.senses("XYZ") == []


def test_one_source_is_enough(tmp_path):
    (tmp_path / WIKIPEDIA_FILE).write_text(WIKIPEDIA, encoding="utf-8")
    assert load_abbreviation_inventory(tmp_path).senses("MI") == [wiki("myocardial infarction")]


def test_empty_inventory():
    inventory = AbbreviationInventory.from_entries([])
    assert len(inventory) == 0 and inventory.senses("AF") == []


def test_no_source_in_folder(tmp_path):
    with pytest.raises(VocabularyError, match="no abbreviation inventory"):
        load_abbreviation_inventory(tmp_path)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("AF\tAF:12\tatrial fibrillation:12:0.9\t0.9\n", "expected 5 tab-separated fields, got 4"),
        ("AF\tAF:x\tatrial fibrillation:12:0.9\t0.9\t12\n", "malformed field 'AF:x'"),
        ("AF\tAF:12\tatrial fibrillation:0.9\t0.9\t12\n", "malformed field"),
    ],
)
def test_malformed_adam_record_names_file_and_line(tmp_path, record, problem):
    (tmp_path / ADAM_FILE).write_text(ADAM + record, encoding="utf-8")
    with pytest.raises(VocabularyError, match=rf"adam_database:10: {problem}"):
        load_abbreviation_inventory(tmp_path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('"abbreviation","meaning"\n"AF","atrial fibrillation"\n', ":1: expected the header"),
        ('"abr","long_form"\n"AF","atrial fibrillation"\n"MI"\n', ":3: expected an abbreviation and a long form"),
    ],
)
def test_malformed_wikipedia_csv(tmp_path, text, where):
    (tmp_path / WIKIPEDIA_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(VocabularyError, match=rf"{WIKIPEDIA_FILE}{where}"):
        load_abbreviation_inventory(tmp_path)


def test_adam_variant_containing_colon():
    pairs = parse_adam_line("a:b\ta:b:3\tsome thing:3:0.5\t0.5\t3\n")
    assert pairs == [("a:b", adam("some thing", 3))]

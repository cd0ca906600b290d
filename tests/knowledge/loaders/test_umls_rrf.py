"""UMLS RRF loader on a few realistic MRCONSO/MRSTY/MRREL rows written by the tests (the UMLS is licensed)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.loaders.umls_rrf import load_umls_rrf, split_rrf_line
from knowledge.schema import Relation
from knowledge.vocabulary import VocabularyError

pytestmark = pytest.mark.unit

# CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
MRCONSO = """\
C0004238|ENG|P|L0004238|PF|S0016668|Y|A0027665||M0001960|D001281|MSH|MH|D001281|Atrial Fibrillation|0|N|256|
C0004238|ENG|P|L0004238|VO|S0016669|Y|A0027667||M0001960|D001281|MSH|PM|D001281|Atrial Fibrillations|0|N|256|
C0004238|ENG|P|L0004238|VC|S1846370|N|A2878280|75186018|49436004||SNOMEDCT_US|SY|49436004|atrial fibrillation|9|N|256|
C0004238|ENG|S|L0004327|PF|S0016899|Y|A0027930||M0001960|D001281|MSH|ET|D001281|Auricular Fibrillation|0|N|256|
C0004238|ENG|S|L0749328|PF|S0849261|Y|A0908711||||NCI|AB|C50466|AF|0|N||
C0004238|ENG|S|L0004329|PF|S0016901|N|A0027933||||LNC|LN|LP7654-3|Fibrillation, atrial|0|O||
C0004238|FRE|P|L1281826|PF|S1526062|Y|A1357410||M0001960|D001281|MSHFRE|MH|D001281|Fibrillation auriculaire|3|N||
C0003015|ENG|P|L0003015|PF|S0007631|Y|A0010253||M0000131|D000806|MSH|MH|D000806|Angiotensin-Converting Enzyme Inhibitors|0|N|256|
C0003015|ENG|S|L0026498|PF|S0061683|Y|A0083734||M0000131|D000806|MSH|ET|D000806|ACE inhibitor|0|N|256|
C0003015|ENG|S|L0795227|PF|S0955126|Y|A1023543||||NCI|AB|C247|ACEI|0|N||
C0020538|ENG|P|L0020538|PF|S0049919|N|A0068627||||SNOMEDCT_US|PT|38341003|Hypertensive disease|9|N|256|
C0020538|ENG|S|L0020545|PF|S0049931|N|A0068641||||SNOMEDCT_US|SY|38341003|High blood pressure|9|N|256|
C0020538|ENG|P|L0020538|VC|S0049920|N|A0068628||||NCI|SY|C3117|hypertensive disease|0|N||
C0020538|ENG|S|L0364476|PF|S0492525|N|A0524716||||NCI|ACR|C3117|HTN|0|N||
C0149931|ENG|P|L0026311|PF|S0062260|Y|A0087386||M0013694|D008881|MSH|MH|D008881|Migraine Disorders|0|N|256|
C0018681|ENG|P|L0018681|PF|S0046854|Y|A0066000||M0009824|D006261|MSH|MH|D006261|Headache|0|N|256|
C0012634|ENG|P|L0012634|PF|S0031772|Y|A0043281||M0006347|D004194|MSH|MH|D004194|Disease|0|N|256|
C0004057|ENG|P|L0004057|PF|S0010396|Y|A0022834||M0001881|D001241|MSH|MH|D001241|Aspirin|0|N|256|
C0038454|ENG|P|L0038454|PF|S0089442|Y|A0120986||M0020688|D020521|MSH|MH|D020521|Stroke|0|N|256|
"""  # noqa: E501 (real rows are long)

# CUI|TUI|STN|STY|ATUI|CVF|
MRSTY = """\
C0004238|T046|B2.2.1.2|Pathologic Function|AT17683839|256|
C0003015|T121|A1.4.1.1.1|Pharmacologic Substance|AT17577478|256|
C0020538|T047|B2.2.1.2.1|Disease or Syndrome|AT17569012|256|
C0149931|T047|B2.2.1.2.1|Disease or Syndrome|AT17606104|256|
C0018681|T184|A2.2.2|Sign or Symptom|AT17560045|256|
C0012634|T047|B2.2.1.2.1|Disease or Syndrome|AT17563452|256|
C0004057|T109|A1.4.1.2.1|Organic Chemical|AT17599998|256|
C0004057|T121|A1.4.1.1.1|Pharmacologic Substance|AT17599999|256|
C0038454|T047|B2.2.1.2.1|Disease or Syndrome|AT17574410|256|
C0999999|T033|A2.2|Finding|AT00000001|256|
"""

# CUI1|AUI1|STYPE1|REL|CUI2|AUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|RG|DIR|SUPPRESS|CVF|  read "CUI2 <REL/RELA> CUI1"
MRREL = """\
C0020538|A0068627|SCUI|RO|C0003015|A0010253|SCUI|may_treat|R100000001||MED-RT|MED-RT|||N||
C0003015|A0010253|SCUI|RO|C0020538|A0068627|SCUI|may_be_treated_by|R100000002||MED-RT|MED-RT|||N||
C0004238|A2878280|SCUI|PAR|C0012634|A3684559|SCUI|inverse_isa|R200000001||SNOMEDCT_US|SNOMEDCT_US|0|Y|N||
C0012634|A3684559|SCUI|CHD|C0004238|A2878280|SCUI|isa|R200000002||SNOMEDCT_US|SNOMEDCT_US|0||N||
C0149931|A0087386|SDUI|PAR|C0012634|A0043281|SDUI||R300000001||MSH|MSH|||N||
C0018681|A0066000|SCUI|RO|C0149931|A0087386|SCUI|has_manifestation|R400000001||OMIM|OMIM|||N||
C0038454|A0120986|SCUI|RO|C0004057|A0022834|SCUI|may_prevent|R500000001||MED-RT|MED-RT|||N||
C0004238|A0027665|AUI|RO|C0038454|A0120986|AUI|associated_with|R600000001||SNOMEDCT_US|SNOMEDCT_US|0||N||
C0038454|A0120986|AUI|RO|C0004238|A0027665|AUI|associated_with|R600000002||SNOMEDCT_US|SNOMEDCT_US|0||N||
C0004238|A0027665|AUI|SIB|C0020538|A0068627|AUI||R700000001||MSH|MSH|||N||
C0003015|A0010253|SCUI|RO|C9999999|A9999999|SCUI|may_treat|R800000001||MED-RT|MED-RT|||N||
C0020538|A0068627|SCUI|RO|C0004057|A0022834|SCUI|may_treat|R900000001||MED-RT|MED-RT|||O||
"""


def write_release(root: Path, conso: str = MRCONSO, sty: str | None = MRSTY, rel: str | None = MRREL) -> Path:
    meta = root / "2024AA" / "META"
    meta.mkdir(parents=True)
    (meta / "MRCONSO.RRF").write_text(conso, encoding="utf-8")
    if sty is not None:
        (meta / "MRSTY.RRF").write_text(sty, encoding="utf-8")
    if rel is not None:
        (meta / "MRREL.RRF").write_text(rel, encoding="utf-8")
    return meta


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_release(tmp_path)


def by_id(vocab):
    return {c.id: c for c in vocab.concepts}


def test_names_synonyms_abbreviations_and_types(release):
    vocab = load_umls_rrf(release)
    concepts = by_id(vocab)
    assert vocab.version == "UMLS 2024AA"
    assert len(concepts) == 8
    af = concepts["C0004238"]
    assert af.name == "Atrial Fibrillation"  # the TS=P, STT=PF, ISPREF=Y row
    # lower-case duplicate, suppressed (O) and French rows are gone
    assert af.synonyms == ("Atrial Fibrillations", "Auricular Fibrillation")
    assert af.abbreviations == ("AF",)
    assert af.semantic_types == ("T046",)
    assert af.xrefs == ("MSH:D001281", "SNOMEDCT_US:49436004", "NCI:C50466")
    assert af.sources == ("UMLS",)
    assert concepts["C0003015"].abbreviations == ("ACEI",)
    assert concepts["C0004057"].semantic_types == ("T109", "T121")
    assert vocab.semantic_types["T184"] == "Sign or Symptom"
    assert "T033" not in vocab.semantic_types  # its CUI is not loaded


def test_name_falls_back_to_first_row(release):
    htn = by_id(load_umls_rrf(release))["C0020538"]
    assert htn.name == "Hypertensive disease"
    assert htn.synonyms == ("High blood pressure",)
    assert htn.abbreviations == ("HTN",)


def test_relations_follow_mrrel_direction(release):
    relations = set(load_umls_rrf(release).relations)
    assert relations == {
        Relation(source="C0003015", type="may_treat", target="C0020538"),  # ACE inhibitors may_treat HTN
        Relation(source="C0004238", type="isa", target="C0012634"),  # AF isa disease (PAR/inverse_isa, CHD/isa)
        Relation(source="C0149931", type="isa", target="C0012634"),  # PAR without RELA
        Relation(source="C0149931", type="has_symptom", target="C0018681"),  # migraine has_manifestation headache
        Relation(source="C0004057", type="may_prevent", target="C0038454"),  # aspirin may_prevent stroke
        Relation(source="C0004238", type="related_to", target="C0038454"),  # other RO, once for both rows
    }


def test_related_off_sources_and_languages(release):
    assert all(r.type != "related_to" for r in load_umls_rrf(release, related=False).relations)
    msh = load_umls_rrf(release, sources={"MSH"})
    assert "C0020538" not in by_id(msh)  # no MSH atoms
    assert by_id(msh)["C0004238"].abbreviations == ()
    assert set(msh.relations) == {Relation(source="C0149931", type="isa", target="C0012634")}
    french = load_umls_rrf(release, languages=("FRE",))
    assert [(c.id, c.name) for c in french.concepts] == [("C0004238", "Fibrillation auriculaire")]


def test_mrsty_and_mrrel_are_optional(tmp_path):
    vocab = load_umls_rrf(write_release(tmp_path, sty=None, rel=None))
    assert len(vocab.concepts) == 8 and vocab.relations == () and vocab.semantic_types == {}


def test_empty_mrconso(tmp_path):
    vocab = load_umls_rrf(write_release(tmp_path, conso="", sty="", rel=""))
    assert vocab.concepts == () and vocab.relations == ()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "C0004238|ENG|P|L0004238|PF|S0016668|Y|A0027665||M0001960|D001281|MSH|MH|D001281|Atrial Fibrillation|0|N|",
            "expected 18 fields, got 17",
        ),
        (
            "C0004238|ENG|P|L0004238|PF|S0016668|Y|A0027665||M0001960|D001281|MSH|MH|D001281|"
            "Atrial Fibrillation|0|N|256",
            "does not end with '|'",
        ),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, line, problem):
    lines = MRCONSO.splitlines()
    lines[2] = line
    meta = write_release(tmp_path, conso="\n".join(lines) + "\n")
    with pytest.raises(VocabularyError, match=rf"MRCONSO\.RRF:3: {problem}"):
        load_umls_rrf(meta)


def test_malformed_mrrel_row(tmp_path):
    meta = write_release(tmp_path, rel=MRREL + "C0020538|A0068627|SCUI|RO|C0003015|\n")
    with pytest.raises(VocabularyError, match=r"MRREL\.RRF:13: expected 16 fields, got 5"):
        load_umls_rrf(meta)


def test_missing_mrconso(tmp_path):
    with pytest.raises(VocabularyError, match=r"MRCONSO\.RRF: cannot read"):
        load_umls_rrf(tmp_path)


rrf_value = st.text(st.characters(blacklist_characters="|\r\n", blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(rrf_value, min_size=1, max_size=20))
def test_rrf_line_round_trip(fields):
    line = "".join(f"{value}|" for value in fields) + "\n"
    assert split_rrf_line(line, len(fields)) == fields
    with pytest.raises(ValueError):
        split_rrf_line(line, len(fields) + 1)

"""The MedQuAD and PubMedQA loaders on the real files in the shared data folder (skipped without it)."""

import os
from pathlib import Path

import pytest

from indexer.loaders import load_file

pytestmark = pytest.mark.integration

DATA = Path(os.environ.get("CLINQA_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))
MEDQUAD = DATA / "medquad"
PUBMEDQA = DATA / "pubmedqa" / "ori_pqal.json"
# One file from each schema the release uses: <Document>, the lower-case <doc>, and <DiseaseFile>.
MEDQUAD_FILES = ["1_CancerGov_QA/0000001_1.xml", "6_NINDS_QA/0000007.xml", "9_CDC_QA/0000397.xml"]


def check_sections(doc) -> None:
    assert doc.sections
    prev = 0
    for s in doc.sections:
        assert prev <= s.body_start < s.body_end <= len(doc.text)
        assert doc.text[s.body_start : s.body_end].strip()
        prev = s.body_end


@pytest.mark.parametrize("name", MEDQUAD_FILES)
def test_real_medquad_files(name):
    path = MEDQUAD / name
    if not path.is_file():
        pytest.skip(f"MedQuAD file not found: {path} (set CLINQA_DATA to the shared data folder)")
    [doc] = load_file(path, f"medquad/{name}")
    assert doc.title and doc.url and doc.url.startswith("http")
    assert doc.organisation in {"CancerGov", "NINDS", "CDC"}
    check_sections(doc)
    for s in doc.sections:
        focus, question = s.path
        assert focus == doc.title
        # The question precedes its answer in the text and is not part of the answer's body.
        assert doc.text[: s.body_start].rstrip().endswith(question)
        assert question not in doc.text[s.body_start : s.body_end]


def test_real_medquad_cuis():
    path = MEDQUAD / MEDQUAD_FILES[0]
    if not path.is_file():
        pytest.skip(f"MedQuAD file not found: {path} (set CLINQA_DATA to the shared data folder)")
    [doc] = load_file(path, "medquad/cancergov")
    assert doc.title == "Adult Acute Lymphoblastic Leukemia"
    assert doc.extra["cuis"] == "C0751606"


def test_real_pubmedqa():
    if not PUBMEDQA.is_file():
        pytest.skip(f"PubMedQA file not found: {PUBMEDQA} (set CLINQA_DATA to the shared data folder)")
    docs = load_file(PUBMEDQA, "pubmedqa/ori_pqal")
    assert len(docs) == 1000
    assert len({d.doc_id for d in docs}) == 1000
    for doc in docs:
        assert doc.url and doc.url.startswith("https://pubmed.ncbi.nlm.nih.gov/")
        assert doc.extra["final_decision"] in {"yes", "no", "maybe"}
        check_sections(doc)
        assert all(s.path[0] == doc.title for s in doc.sections)

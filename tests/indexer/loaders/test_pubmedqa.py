import json
from pathlib import Path

import pytest

from indexer.loaders import LOADERS, LoaderError, load_file, load_pubmedqa

pytestmark = pytest.mark.unit

RECORDS = {
    "12345678": {
        "QUESTION": "Does  colchicine prevent gout flares?",
        "CONTEXTS": ["Gout flares are painful.", "  We randomised 100 patients.  ", "Flares fell by half."],
        "LABELS": ["BACKGROUND", "METHODS", "RESULTS"],
        "MESHES": ["Gout", "Colchicine"],
        "YEAR": "2019",
        "LONG_ANSWER": "Colchicine halved flares.",
        "final_decision": "yes",
        "reasoning_required_pred": "yes",
    },
    "87654321": {
        "QUESTION": "Is allopurinol safe?",
        "CONTEXTS": ["Allopurinol was well tolerated."],
        "LABELS": ["RESULTS"],
    },
}


def write(tmp_path: Path, data: object, name: str = "ori_pqal.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_one_document_per_pmid_with_a_section_per_context(tmp_path):
    first, second = load_pubmedqa(write(tmp_path, RECORDS), "pq/ori_pqal")
    assert first.doc_id == "pq/ori_pqal#12345678" and second.doc_id == "pq/ori_pqal#87654321"
    question = "Does colchicine prevent gout flares?"
    assert first.title == question
    assert first.url == "https://pubmed.ncbi.nlm.nih.gov/12345678/"
    assert first.published == "2019"
    # extra keeps the question as the data set spells it (benchmarks match on it); the title is tidied.
    assert first.extra == {
        "question": "Does  colchicine prevent gout flares?",
        "long_answer": "Colchicine halved flares.",
        "final_decision": "yes",
    }
    assert first.text == "Gout flares are painful.\n\nWe randomised 100 patients.\n\nFlares fell by half."
    assert [s.path for s in first.sections] == [(question, "BACKGROUND"), (question, "METHODS"), (question, "RESULTS")]
    assert [first.text[s.body_start : s.body_end] for s in first.sections] == [
        "Gout flares are painful.",
        "We randomised 100 patients.",
        "Flares fell by half.",
    ]
    assert second.extra == {"question": "Is allopurinol safe?"} and second.published is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([{"QUESTION": "q"}], "expected an object of PMIDs"),
        ({"abc": RECORDS["87654321"]}, "not a PMID"),
        ({"1": "text"}, "not an object"),
        ({"1": {"CONTEXTS": ["c"], "LABELS": ["L"]}}, "QUESTION"),
        ({"1": {"QUESTION": "q", "CONTEXTS": "c", "LABELS": ["L"]}}, "CONTEXTS must be a list"),
        ({"1": {"QUESTION": "q", "CONTEXTS": ["a", "b"], "LABELS": ["L"]}}, "2 CONTEXTS but 1 LABELS"),
        ({"1": {"QUESTION": "q", "CONTEXTS": [" "], "LABELS": ["L"]}}, "no CONTEXTS text"),
        ({}, "no records"),
    ],
)
def test_json_of_another_shape_is_a_loader_error(tmp_path, data, reason):
    with pytest.raises(LoaderError, match=reason):
        load_pubmedqa(write(tmp_path, data), "pq/bad")


def test_empty_and_invalid_json_are_loader_errors(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("", encoding="utf-8")
    with pytest.raises(LoaderError, match="invalid JSON"):
        load_pubmedqa(path, "pq/empty")
    path.write_text('{"1": {"QUESTION": ', encoding="utf-8")
    with pytest.raises(LoaderError, match="invalid JSON"):
        load_pubmedqa(path, "pq/truncated")


def test_registered_for_json(tmp_path):
    assert ".json" in LOADERS
    docs = load_file(write(tmp_path, RECORDS), "pq/ori")
    assert len(docs) == 2

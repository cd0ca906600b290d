import json
from pathlib import Path

import pytest

from indexer.loaders import LOADERS, LoaderError, load_file, load_jsonl

pytestmark = pytest.mark.unit


def write_lines(tmp_path: Path, lines: list[str], name: str = "records.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


RECORDS = [
    {
        "id": "a1",
        "title": "Gout flares",
        "text": "Give colchicine early.\n\nReview in 2 weeks.",
        "url": "https://example.org/gout",
        "organisation": "Test Group",
        "published": "2024-05-01",
        "language": "en",
        "year": 2024,
        "tags": ["a", "b"],
        "note": None,
    },
    {"id": 7, "text": "Untitled record text \u2028 with a raw line separator."},
]


def test_records_become_documents_with_metadata(tmp_path):
    path = write_lines(tmp_path, [json.dumps(RECORDS[0]), "", "   ", json.dumps(RECORDS[1], ensure_ascii=False)])
    first, second = load_jsonl(path, "c/records")
    assert first.doc_id == "c/records#a1" and second.doc_id == "c/records#7"
    assert first.title == "Gout flares"
    assert (first.url, first.organisation, first.published) == (
        "https://example.org/gout",
        "Test Group",
        "2024-05-01",
    )
    assert first.extra == {"language": "en", "year": "2024"}
    assert first.text == RECORDS[0]["text"]
    [section] = first.sections
    assert section.path == ("Gout flares",)
    assert first.text[section.body_start : section.body_end] == RECORDS[0]["text"]
    assert second.title == "7" and second.sections[0].path == ("7",)
    assert second.text == RECORDS[1]["text"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "line 2: invalid JSON"),
        ('["a list"]', "line 2: expected a JSON object"),
        ('{"text": "no id"}', "line 2: 'id'"),
        ('{"id": "b", "title": "no text"}', "line 2: 'text'"),
        ('{"id": "b", "text": "   "}', "line 2: 'text'"),
        ('{"id": true, "text": "bool id"}', "line 2: 'id'"),
        ('{"id": "a1", "text": "same id again"}', "line 2: duplicate document id c/r#a1"),
    ],
)
def test_a_malformed_line_fails_the_file_naming_the_line(tmp_path, line, reason):
    path = write_lines(tmp_path, [json.dumps(RECORDS[0]), line])
    with pytest.raises(LoaderError, match=reason.replace("(", r"\(")):
        load_jsonl(path, "c/r")


def test_empty_and_undecodable_files_are_loader_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="no records"):
        load_jsonl(empty, "c/empty")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b'{"id": "\xff"}')
    with pytest.raises(LoaderError, match="UTF-8"):
        load_jsonl(binary, "c/bin")


def test_registered_for_jsonl(tmp_path):
    assert ".jsonl" in LOADERS
    docs = load_file(write_lines(tmp_path, [json.dumps(r) for r in RECORDS]), "c/r")
    assert [d.doc_id for d in docs] == ["c/r#a1", "c/r#7"]

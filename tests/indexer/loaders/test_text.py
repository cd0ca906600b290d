from pathlib import Path

import pytest

from indexer.loaders import LOADERS, LoaderError, load_file, load_text

pytestmark = pytest.mark.unit


def write(tmp_path: Path, text: str, name: str = "note.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def body(doc, section) -> str:
    return doc.text[section.body_start : section.body_end]


def test_short_first_line_is_the_title_and_not_in_the_body(tmp_path):
    doc = load_text(
        write(tmp_path, "\n  Gout: acute flares  \n\nGive colchicine early.\n\nReview in 2 weeks.\n"), "c/note"
    )
    assert doc.title == "Gout: acute flares"
    assert doc.doc_id == "c/note" and doc.source_path.endswith("note.txt")
    assert [s.path for s in doc.sections] == [("Gout: acute flares",)]
    assert body(doc, doc.sections[0]).strip() == "Give colchicine early.\n\nReview in 2 weeks."
    assert doc.page_at(0) is None


def test_first_line_that_runs_into_a_paragraph_stays_in_the_body(tmp_path):
    doc = load_text(write(tmp_path, "Give colchicine early\nfor acute gout.\n"), "c/note")
    assert doc.title == "Give colchicine early"
    assert body(doc, doc.sections[0]) == doc.text


def test_long_first_line_falls_back_to_the_file_name(tmp_path):
    doc = load_text(write(tmp_path, "x" * 130 + "\n\nmore\n", name="gout-notes.txt"), "c/g")
    assert doc.title == "gout-notes"
    assert doc.sections[0].body_start == 0


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffTitle\n\nBody.\n".encode())
    doc = load_text(path, "c/bom")
    assert doc.title == "Title" and body(doc, doc.sections[0]).strip() == "Body."


def test_empty_and_binary_files_are_loader_errors(tmp_path):
    with pytest.raises(LoaderError, match="no text"):
        load_text(write(tmp_path, " \n\n\t\n"), "c/empty")
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(LoaderError, match="UTF-8"):
        load_text(path, "c/bin")
    path.write_bytes(b"text\x00with NUL")
    with pytest.raises(LoaderError, match="NUL"):
        load_text(path, "c/bin")


def test_registered_for_txt(tmp_path):
    assert ".txt" in LOADERS
    [doc] = load_file(write(tmp_path, "T\n\nbody\n", name="A.TXT"), "c/a")
    assert doc.title == "T"

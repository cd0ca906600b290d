from collections.abc import Sequence
from pathlib import Path

import pytest
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen import canvas

from app.config import ChunkSettings
from indexer.chunking import SectionChunker
from indexer.loaders import LOADERS, LoaderError, load_file, load_pdf

pytestmark = pytest.mark.unit

# Three pages, each opening with a heading line, with words that say which page they are on.
PAGES = [
    ["Asthma guideline", "Alpha intro text on page one."],
    ["Dosing", "Bravo dosing: take 5 mg daily.", "Bravo second line of page two."],
    ["Monitoring", "Charlie review yearly on page three."],
]
PAGE_WORDS = ["Alpha", "Bravo", "Charlie"]


def write_pdf(
    path: Path,
    title: str | None = None,
    outline: Sequence[tuple[str, int, int]] = (),  # (title, 0-based page, level)
    encrypt: str | StandardEncryption | None = None,
) -> Path:
    c = canvas.Canvas(str(path), encrypt=encrypt)
    if title:
        c.setTitle(title)
    for page, lines in enumerate(PAGES):
        for i, line in enumerate(lines):
            c.drawString(72, 780 - 18 * i, line)
        for name, at, level in outline:
            if at == page:
                c.bookmarkPage(name)
                c.addOutlineEntry(name, name, level=level)
        c.showPage()
    c.save()
    return path


def word_count(text: str) -> int:
    return len(text.split())


def test_pages_and_metadata(tmp_path):
    doc = load_pdf(write_pdf(tmp_path / "guide.pdf", title="Asthma guide"), "c/guide")
    assert doc.doc_id == "c/guide" and doc.title == "Asthma guide"
    assert len(doc.page_starts) == 3 and doc.page_starts[0] == 0
    for page, word in enumerate(PAGE_WORDS, start=1):
        assert doc.page_at(doc.text.index(word)) == page
    assert doc.page_at(doc.text.index("Bravo dosing")) == 2
    # No outline: one section path, cut at page boundaries so that no chunk spans two pages.
    assert {s.path for s in doc.sections} == {("Asthma guide",)}
    assert [doc.page_at(s.body_start) for s in doc.sections] == [1, 2, 3]
    assert doc.text[doc.sections[1].body_start : doc.sections[1].body_end].strip() == (
        "Dosing\nBravo dosing: take 5 mg daily.\nBravo second line of page two."
    )


def test_chunks_carry_the_page_they_come_from(tmp_path):
    doc = load_pdf(write_pdf(tmp_path / "guide.pdf", title="Asthma guide"), "c/guide")
    chunks = SectionChunker(ChunkSettings(), word_count).run(doc)
    assert chunks
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        pages = [n for n, word in enumerate(PAGE_WORDS, start=1) if word in chunk.text]
        assert pages == [chunk.page]
    assert [c.page for c in chunks] == [1, 2, 3]


def test_outline_gives_sections_that_exclude_their_titles(tmp_path):
    outline = [("Dosing", 1, 0), ("Monitoring", 2, 0)]
    doc = load_pdf(write_pdf(tmp_path / "guide.pdf", title="Asthma guide", outline=outline), "c/guide")
    assert [s.path for s in doc.sections] == [
        ("Asthma guide",),
        ("Asthma guide", "Dosing"),
        ("Asthma guide", "Monitoring"),
    ]
    bodies = [doc.text[s.body_start : s.body_end].strip() for s in doc.sections]
    assert bodies == [
        "Asthma guideline\nAlpha intro text on page one.",
        "Bravo dosing: take 5 mg daily.\nBravo second line of page two.",
        "Charlie review yearly on page three.",
    ]
    chunks = SectionChunker(ChunkSettings(), word_count).run(doc)
    assert [(c.section_path[-1], c.page) for c in chunks] == [("Asthma guide", 1), ("Dosing", 2), ("Monitoring", 3)]


def test_nested_outline_and_title_from_file_name(tmp_path):
    outline = [("Asthma guideline", 0, 0), ("Dosing", 1, 1), ("Monitoring", 2, 1)]
    doc = load_pdf(write_pdf(tmp_path / "asthma-guide.pdf", outline=outline), "c/guide")
    assert doc.title == "asthma-guide"  # ReportLab's placeholder "untitled" is no title
    assert [s.path for s in doc.sections] == [
        ("asthma-guide", "Asthma guideline"),
        ("asthma-guide", "Asthma guideline", "Dosing"),
        ("asthma-guide", "Asthma guideline", "Monitoring"),
    ]


def test_owner_password_only_pdf_is_read(tmp_path):
    path = write_pdf(tmp_path / "locked.pdf", title="Locked", encrypt=StandardEncryption("", ownerPassword="owner"))
    assert "Bravo dosing" in load_pdf(path, "c/locked").text


def test_encrypted_corrupt_and_empty_pdfs_are_loader_errors(tmp_path):
    with pytest.raises(LoaderError, match="encrypted"):
        load_pdf(write_pdf(tmp_path / "secret.pdf", encrypt="user-password"), "c/secret")
    good = write_pdf(tmp_path / "good.pdf").read_bytes()
    corrupt = tmp_path / "corrupt.pdf"
    for raw in (b"%PDF-1.4\nthis is not a pdf", good[: len(good) // 3], b"\x89PNG\r\n\x1a\n" + b"\x00" * 64):
        corrupt.write_bytes(raw)
        with pytest.raises(LoaderError):
            load_pdf(corrupt, "c/corrupt")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(LoaderError, match="empty"):
        load_pdf(empty, "c/empty")


def test_pdf_without_text_is_a_loader_error(tmp_path):
    path = tmp_path / "scan.pdf"
    c = canvas.Canvas(str(path))
    c.rect(72, 72, 200, 200, fill=1)
    c.showPage()
    c.save()
    with pytest.raises(LoaderError, match="no extractable text"):
        load_pdf(path, "c/scan")


def test_registered_for_pdf(tmp_path):
    assert ".pdf" in LOADERS
    [doc] = load_file(write_pdf(tmp_path / "g.pdf", title="G"), "c/g")
    assert doc.title == "G"

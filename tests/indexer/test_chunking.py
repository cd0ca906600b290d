from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import ChunkSettings
from indexer.chunking import SectionChunker, chunk_id
from indexer.loaders import load_markdown
from tests.helpers import TINY_DOCS

pytestmark = pytest.mark.unit


def words(text: str) -> int:
    return len(text.split())


def doc_from(tmp_path: Path, text: str, name: str = "d.md"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_markdown(path, f"t/{path.stem}")


def test_chunks_follow_sections_and_skip_references(tmp_path):
    doc = doc_from(tmp_path, TINY_DOCS["hypertension.md"], "hypertension.md")
    chunks = SectionChunker(ChunkSettings(), words).run(doc)
    crumbs = [c.breadcrumb for c in chunks]
    assert crumbs == [
        "Hypertension",
        "Hypertension > Diagnosis",
        "Hypertension > Treatment > First-line drugs",
        "Hypertension > Treatment > Targets",
    ]
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
    assert chunks[2].text.startswith("- An ACE inhibitor") and "amlodipine" in chunks[2].text  # list kept whole


def test_budget_splits_long_sections_into_balanced_chunks(tmp_path):
    sentences = " ".join(f"Sentence number {i} has five words." for i in range(40))
    doc = doc_from(tmp_path, f"# T\n\n## S\n\n{sentences}\n")
    chunks = SectionChunker(ChunkSettings(max_tokens=50), words).run(doc)
    assert len(chunks) > 3
    assert all(c.n_tokens <= 50 for c in chunks)
    sizes = [words(c.text) for c in chunks]
    assert min(sizes) >= max(sizes) / 2  # no tiny tail
    assert "".join(c.text for c in chunks).replace(" ", "") == sentences.replace(" ", "")


def test_chunk_ids_are_stable_and_distinct(tmp_path):
    doc = doc_from(tmp_path, TINY_DOCS["asthma.md"], "asthma.md")
    first = SectionChunker(ChunkSettings(), words).run(doc)
    again = SectionChunker(ChunkSettings(), words).run(doc)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert first[0].id == chunk_id(doc.doc_id, first[0].section_path, first[0].start, first[0].end)


def test_invalid_settings_name_the_value():
    with pytest.raises(ValueError, match="max_tokens must be >= 16, got 4"):
        SectionChunker(ChunkSettings(max_tokens=4), words)


def test_empty_sections_give_no_chunks(tmp_path):
    doc = doc_from(tmp_path, "# Title\n\nx\n\n## Empty\n\n## References\n\nRef.\n")
    assert [c.breadcrumb for c in SectionChunker(ChunkSettings(), words).run(doc)] == ["Title"]


_word = st.from_regex(r"[A-Za-z]{1,12}[.,]?", fullmatch=True)
_para = st.lists(_word, min_size=1, max_size=60).map(" ".join)
_section = st.tuples(st.from_regex(r"#{2,3} [A-Z][a-z]{1,8}", fullmatch=True), st.lists(_para, max_size=4))


@settings(max_examples=60, deadline=None)
@given(st.lists(_section, min_size=1, max_size=6), st.integers(min_value=16, max_value=80))
def test_chunks_are_verbatim_within_budget_and_cover_all_words(tmp_path_factory, sections, budget):
    body = "\n\n".join(h + "\n\n" + "\n\n".join(paras) for h, paras in sections)
    tmp = tmp_path_factory.mktemp("prop")
    doc = doc_from(tmp, f"# Doc\n\nIntro.\n\n{body}\n")
    chunks = SectionChunker(ChunkSettings(max_tokens=budget, skip_sections=[]), words).run(doc)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.n_tokens <= budget or words(c.text) == 1  # only a single giant word may exceed
    expected = ["Intro.", *(w for _, paras in sections for p in paras for w in p.split())]
    assert [w for c in chunks for w in c.text.split()] == expected


def test_a_word_longer_than_the_budget_is_cut_rather_than_overflowing(tmp_path):
    # A run of citation targets with no whitespace: one "word" of hundreds of tokens.
    def pieces(text: str) -> int:  # a rough sub-word count: letters/digit runs and punctuation runs
        import re

        return len(re.findall(r"\w+|[^\w\s]+", text))

    blob = "".join(f"x{i}/#cit/section_{i}," for i in range(120))
    doc = doc_from(tmp_path, f"# Long\n\nBefore the blob. {blob} After the blob.\n")
    chunks = SectionChunker(ChunkSettings(max_tokens=64), pieces).run(doc)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 64 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == doc.text.split("\n\n", 1)[1].strip().replace(" ", "")

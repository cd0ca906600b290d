from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.loaders import LoaderError, load_markdown
from indexer.loaders.base import map_offset
from indexer.loaders.markdown import parse_sections, render_links

pytestmark = pytest.mark.unit

DOC = """---
title: "Asthma: maintenance"
organisation: "Test Group"
lastReviewed: 2025-12-30
tags: [a, b]
---

# Asthma

Intro text.

## Treatment

### Step 1

Use ICS.

```
# not a heading
```

## Monitoring

Review yearly.
"""


def write(tmp_path: Path, text: str, name: str = "doc.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_and_section_tree(tmp_path):
    doc = load_markdown(write(tmp_path, DOC), "c/doc")
    assert doc.title == "Asthma: maintenance"
    assert doc.organisation == "Test Group"
    assert doc.reviewed == "2025-12-30"  # NCI PDQ spelling, parsed by YAML as a date
    assert [s.path for s in doc.sections] == [
        ("Asthma",),
        ("Asthma", "Treatment", "Step 1"),
        ("Asthma", "Monitoring"),
    ]
    step1 = doc.sections[1]
    body = doc.text[step1.body_start : step1.body_end]
    assert "Use ICS." in body and "# not a heading" in body


def test_document_without_h1_gets_title_as_root(tmp_path):
    doc = load_markdown(write(tmp_path, "---\ntitle: T\n---\n## A\n\ntext\n"), "c/doc")
    assert doc.sections[0].path == ("T", "A")


def test_invalid_front_matter_is_a_loader_error(tmp_path):
    with pytest.raises(LoaderError, match="front matter"):
        load_markdown(write(tmp_path, "---\ntitle: [unclosed\n---\n# A\ntext\n"), "c/doc")


def test_binary_and_empty_files_are_loader_errors(tmp_path):
    with pytest.raises(LoaderError, match="UTF-8"):
        path = tmp_path / "bin.md"
        path.write_bytes(b"\xff\xfe\x00garbage")
        load_markdown(path, "c/bin")
    with pytest.raises(LoaderError, match="no text"):
        load_markdown(write(tmp_path, "---\ntitle: x\n---\n\n"), "c/empty")


_line = st.one_of(
    st.from_regex(r"#{1,3} [A-Za-z]{1,8}", fullmatch=True),
    st.from_regex(r"[A-Za-z .]{0,30}", fullmatch=True),
    st.just(""),
)


@given(st.lists(_line, max_size=30))
def test_sections_are_disjoint_ordered_and_exclude_headings(lines):
    text = "\n".join(lines)
    sections, _ = parse_sections(text, 0)
    prev = 0
    for s in sections:
        assert prev <= s.body_start <= s.body_end <= len(text)
        body = text[s.body_start : s.body_end]
        assert body.strip()
        assert not any(line.startswith("#") for line in body.splitlines())
        prev = s.body_end


def test_links_are_rendered_as_their_text_with_offsets_into_the_file(tmp_path):
    raw = (
        "# Mistletoe\n\n## History\n\nMistletoe [extracts](/Common/PopUps/popDefinition.aspx?id=407760&x=y)"
        ' were studied.[[1](#cit/section_3.1),[3](#cit/section_3.3)] See ![figure](fig.png "Figure 1").\n'
    )
    path = write(tmp_path, raw)
    doc = load_markdown(path, "c/mistletoe")
    body = doc.text[doc.sections[-1].body_start : doc.sections[-1].body_end]
    assert body.strip() == "Mistletoe extracts were studied.[1,3] See figure."
    start = doc.text.index("extracts")
    assert raw[doc.source_offset(start) :].startswith("extracts](/Common")
    assert all(raw[doc.source_offset(i)] == ch for i, ch in enumerate(doc.text))
    # Anchors of a stretch, relative to it, map the same way.
    lo, hi = doc.text.index("were"), len(doc.text)
    rel = doc.anchors_within(lo, hi)
    assert all(raw[map_offset(rel, i, doc.source_offset(lo))] == doc.text[lo + i] for i in range(hi - lo))


_piece = st.one_of(
    st.from_regex(r"[A-Za-z .,()\n]{0,12}", fullmatch=True),
    st.builds(
        lambda t, u: f"[{t}]({u})",
        st.from_regex(r"[A-Za-z0-9 ]{0,8}", fullmatch=True),
        st.from_regex(r"[#/a-z0-9_.?=&]{0,12}", fullmatch=True),
    ),
    st.builds(lambda t: f"[[{t}](#cit/section_1.{t})]", st.integers(0, 99)),
    st.sampled_from(["[", "]", "(", ")", "![", "]("]),
)


@given(st.lists(_piece, max_size=20))
def test_every_rendered_character_maps_back_to_the_same_character(pieces):
    raw = "".join(pieces)
    rendered, anchors = render_links(raw)
    assert len(rendered) <= len(raw)
    assert all(raw[map_offset(anchors, i)] == ch for i, ch in enumerate(rendered))
    assert [a[0] for a in anchors] == sorted(a[0] for a in anchors)


@given(st.lists(_piece, min_size=1, max_size=20), st.data())
def test_stretch_anchors_map_both_ends_like_the_document(pieces, data):
    from indexer.loaders.base import Document, Section

    raw = "".join(pieces)
    rendered, anchors = render_links(raw)
    doc = Document("d", "d.md", rendered, "t", (Section((), 0, len(rendered)),), source_anchors=anchors)
    lo = data.draw(st.integers(0, len(rendered)))
    hi = data.draw(st.integers(lo, len(rendered)))
    rel = doc.anchors_within(lo, hi)
    base = doc.source_offset(lo)
    assert map_offset(rel, 0, base) == base
    assert map_offset(rel, hi - lo, base) == doc.source_offset(hi)
    assert all(raw[map_offset(rel, i, base)] == rendered[lo + i] for i in range(hi - lo))

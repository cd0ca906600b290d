from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.loaders import LoaderError, load_markdown
from indexer.loaders.markdown import parse_sections

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

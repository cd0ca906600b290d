import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.loaders import LOADERS, LoaderError, load_file, load_html
from indexer.loaders.html import layout, parse_html

pytestmark = pytest.mark.unit

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Asthma | Test Health</title>
  <meta name="publisher" content="Test Health Service">
  <meta name="author" content="A. Writer">
  <link rel="canonical" href="https://example.org/asthma">
  <meta property="og:url" content="https://example.org/asthma?utm=x">
  <meta name="dcterms.date" content="2024-01-15">
  <meta property="article:modified_time" content="2025-06-01">
  <meta name="description" content="How asthma is treated.">
  <style>body { font-family: SECRETSTYLE; }</style>
  <script>var secret = "SECRETSCRIPT <h1>not a heading</h1>";</script>
</head>
<body>
  <header><nav><a href="/">Home</a> <a href="/a-z">A to Z</a></nav><h1>Site banner</h1></header>
  <article>
    <header><h1>Asthma</h1></header>
    <p>Asthma is a   common
       lung condition &amp; treatable.<br>It affects all ages.</p>
    <h2>Treatment</h2>
    <p>Use a preventer inhaler.</p>
    <ul>
      <li>Inhaled corticosteroids</li>
      <li>Add-on therapy
        <ul><li>LABA</li></ul>
      </li>
    </ul>
    <h3>Doses</h3>
    <table>
      <tr><th>Drug</th><th>Dose</th></tr>
      <tr><td>Budesonide</td><td>200 <b>mcg</b> twice daily</td></tr>
    </table>
    <h2>Monitoring</h2>
    <div><p>Review every year.</p></div>
    <script>trackPageView("SECRETSCRIPT");</script>
  </article>
  <footer>Copyright SECRETFOOTER</footer>
</body>
</html>
"""


def write(tmp_path: Path, text: str, name: str = "asthma.html") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def bodies(doc) -> dict[tuple[str, ...], str]:
    return {s.path: doc.text[s.body_start : s.body_end].strip() for s in doc.sections}


def test_text_metadata_and_section_tree(tmp_path):
    doc = load_html(write(tmp_path, PAGE), "c/asthma")
    assert doc.doc_id == "c/asthma"
    assert doc.title == "Asthma | Test Health"
    assert doc.organisation == "Test Health Service"
    assert doc.url == "https://example.org/asthma"
    assert (doc.published, doc.reviewed) == ("2024-01-15", "2025-06-01")
    assert doc.extra == {"description": "How asthma is treated."}
    for dropped in ("SECRET", "Home", "A to Z", "Site banner", "not a heading", "font-family"):
        assert dropped not in doc.text
    assert bodies(doc) == {
        ("Asthma",): "Asthma is a common lung condition & treatable.\nIt affects all ages.",
        ("Asthma", "Treatment"): ("Use a preventer inhaler.\n\n- Inhaled corticosteroids\n- Add-on therapy\n  - LABA"),
        ("Asthma", "Treatment", "Doses"): "Drug | Dose\nBudesonide | 200 mcg twice daily",
        ("Asthma", "Monitoring"): "Review every year.",
    }
    # Headings are in the text, each once, and inside no section body.
    for heading in ("Asthma", "Treatment", "Doses", "Monitoring"):
        at = doc.text.index(heading)
        assert not any(s.body_start <= at < s.body_end for s in doc.sections)


def test_ordered_lists_unclosed_items_and_title_from_h1(tmp_path):
    page = "<body><h1>Gout</h1><p>Steps:<ol><li>Rest<li>Ice<li>NSAID</ol><p>Then review."
    doc = load_html(write(tmp_path, page), "c/gout")
    assert doc.title == "Gout"
    assert (doc.organisation, doc.url, doc.published, doc.reviewed) == (None, None, None, None)
    assert bodies(doc) == {("Gout",): "Steps:\n\n1. Rest\n2. Ice\n3. NSAID\n\nThen review."}


def test_page_without_h1_has_its_title_at_the_root(tmp_path):
    doc = load_html(write(tmp_path, "<p>Intro.</p><h2>Dose</h2><p>5 mg.</p>", name="gout-dose.htm"), "c/g")
    assert doc.title == "gout-dose"
    assert [s.path for s in doc.sections] == [("gout-dose",), ("gout-dose", "Dose")]


def test_declared_charset_is_used(tmp_path):
    path = tmp_path / "latin.html"
    path.write_bytes('<meta charset="iso-8859-1"><h1>Caf\xe9</h1><p>na\xefve</p>'.encode("latin-1"))
    doc = load_html(path, "c/latin")
    assert doc.title == "Café" and bodies(doc) == {("Café",): "naïve"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "no text"),
        (b"<html><head><title>Only a title</title><script>x()</script></head><body> </body></html>", "no text"),
        (b"<p>caf\xe9</p>", "cannot decode as utf-8"),
        (b'<meta charset="no-such-codec"><p>x</p>', "unknown charset"),
        (b"<p>bin\x00ary</p>", "NUL"),
        (b"<p>x</p><![bogus[ y ]]>", "malformed markup"),
    ],
)
def test_empty_and_malformed_pages_are_loader_errors(tmp_path, raw, reason):
    path = tmp_path / "bad.html"
    path.write_bytes(raw)
    with pytest.raises(LoaderError, match=reason):
        load_html(path, "c/bad")


def test_registered_for_html_and_htm(tmp_path):
    assert {".html", ".htm"} <= set(LOADERS)
    [doc] = load_file(write(tmp_path, PAGE, name="a.HTM"), "c/a")
    assert doc.title == "Asthma | Test Health"


# Random pages: headings (marked "Hdg", upper case, so no paragraph text can contain the marker) and
# paragraphs (lower case), nested in divs and sections at random.
_heading = st.builds(
    lambda level, word: f"<h{level}>Hdg{word}</h{level}>",
    st.integers(1, 6),
    st.from_regex(r"[A-Z]{1,6}", fullmatch=True),
)
_paragraph = st.builds(lambda words: f"<p>{words}</p>", st.from_regex(r"[a-z][a-z .,]{0,30}", fullmatch=True))
_node = st.recursive(
    st.one_of(_heading, _paragraph, st.just("<br>"), st.just("loose text")),
    lambda children: st.builds(
        lambda tag, parts: f"<{tag}>{''.join(parts)}</{tag}>",
        st.sampled_from(["div", "section", "article", "main"]),
        st.lists(children, max_size=5),
    ),
    max_leaves=25,
)


@given(st.lists(_node, max_size=12))
def test_sections_are_disjoint_ordered_in_bounds_and_exclude_headings(nodes):
    html = "<body>" + "".join(nodes) + "</body>"
    text, sections, _ = layout(parse_html(html).blocks)
    prev = 0
    for s in sections:
        assert prev <= s.body_start <= s.body_end <= len(text)
        body = text[s.body_start : s.body_end]
        assert body.strip()
        assert "Hdg" not in body
        assert all(part.startswith("Hdg") for part in s.path)
        prev = s.body_end
    # Every paragraph's text is in some section body.
    covered = "".join(text[s.body_start : s.body_end] for s in sections)
    for paragraph in re.findall(r"<p>(.*?)</p>", html):
        assert " ".join(paragraph.split()) in covered

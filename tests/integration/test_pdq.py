"""The indexer and search on real NCI PDQ summaries from ../shared/data (skipped when absent)."""

from pathlib import Path

import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from app.pipeline.runner import Pipeline
from indexer.build import build_index
from indexer.store import read_index
from tests.conftest import data_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PDQ = data_dir() / "nci" / "pdq"
FILES = [
    "types-lung-hp-small-cell-lung-treatment-pdq.md",
    "types-small-intestine-hp-small-intestine-treatment-pdq.md",
    "types-cervical-hp-treatment-during-pregnancy-pdq.md",
]


@pytest.fixture(scope="module")
def pdq_settings(tmp_path_factory):
    if not PDQ.is_dir():
        pytest.skip(f"NCI PDQ data not found at {PDQ} (set CLINQA_DATA to the shared data folder)")
    present = [f for f in FILES if (PDQ / f).is_file()]
    if len(present) < 2:
        pytest.skip(f"expected PDQ files not found in {PDQ}")
    corpus = tmp_path_factory.mktemp("pdq") / "pdq"
    corpus.mkdir()
    for name in present:  # links, not copies: the data stays in ../shared
        (corpus / name).symlink_to(PDQ / name)
    root = corpus.parent
    settings = Settings(index=IndexSettings(root=root / "idx"), corpus=CorpusSettings(paths=[corpus], vocabulary=None))
    build_index(settings)
    return settings


def test_pdq_chunks_are_verbatim_sectioned_and_within_the_encoder_limit(pdq_settings):
    from indexer.store import resolve_version

    data = read_index(resolve_version(pdq_settings.index.root))
    m = data.manifest
    assert m.counts["documents"] >= 2 and m.counts["chunks"] > 100
    assert m.over_token_limit == []
    assert all(c.n_tokens <= m.encoder.max_seq_length - 2 for c in data.chunks)
    assert not any(c.section_path and c.section_path[-1] == "References" for c in data.chunks)
    docs = {d.doc_id: Path(d.source_path).read_text(encoding="utf-8") for d in m.documents}
    for c in data.chunks:
        # Verbatim but for Markdown links shown as their text; every character maps back to the file.
        source = docs[c.doc_id]
        assert all(source[c.source_offset(i)] == ch for i, ch in enumerate(c.text))
        assert "](" not in c.text
    assert any(d.reviewed for d in m.documents)  # lastReviewed from the PDQ front matter


def test_pdq_search_finds_the_right_summary(pdq_settings):
    pipeline = Pipeline.load(pdq_settings)
    hits = pipeline.search("etoposide and cisplatin for limited-stage small cell lung cancer", top_k=5).results
    assert hits and all("lung" in h.chunk.doc_id for h in hits[:3])

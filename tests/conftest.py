from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from tests.helpers import REPO, write_tiny_corpus


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def tiny_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a tiny corpus written by the tests, with a real index built once per session."""
    from indexer.build import build_index

    root = tmp_path_factory.mktemp("tiny")
    corpus, vocab = write_tiny_corpus(root)
    settings = Settings(
        index=IndexSettings(root=root / "indexes"),
        corpus=CorpusSettings(paths=[corpus], vocabulary=vocab),
    )
    build_index(settings)
    return settings


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_settings: Settings):
    from app.pipeline.runner import Pipeline

    return Pipeline.load(tiny_settings)

"""Mining training groups from a real index, and fine-tuning real (tiny, random-weight) models on them."""

import json
import math

import pytest

from app.config import RerankSettings, TrainSettings
from app.pipeline.rerank import CrossEncoderReranker
from app.pipeline.types import Query, ScoredChunk
from app.train.mining import Miner
from app.train.models import TrainingError, train_encoder, train_reranker
from indexer.loaders.base import record_id
from indexer.store import read_index, resolve_version
from tests.helpers import clinqa, write_tiny_bert

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def index(tiny_settings):
    return read_index(resolve_version(tiny_settings.index.root))


def settings(**kw) -> TrainSettings:
    return TrainSettings(**{"negatives": 1, "negative_depth": 10, "batch_groups": 2, "max_length": 64, **kw})


def test_title_groups_take_negatives_from_other_sections(index):
    groups = Miner(index, settings(negatives=2)).from_titles()
    assert groups and all(g.source == "title" and len(g.negatives) == 2 for g in groups)
    by_text = {c.search_text: c for c in index.chunks}
    for g in groups:
        positive = by_text[g.positive]
        assert positive.section_path[-1] in g.query
        for n in g.negatives:
            neg = by_text[n]
            assert (neg.doc_id, neg.section_path) != (positive.doc_id, positive.section_path)
    assert Miner(index, settings(negatives=2)).from_titles() == groups  # seeded: the same groups again


def test_question_groups_use_the_gold_documents_best_chunk(index):
    doc = next(record_id(c.doc_id) for c in index.chunks if "ramipril" in c.text)
    miner = Miner(index, settings())
    groups = miner.from_questions({"q1": "ramipril dose for adults under 55", "q2": "  "}, {"q1": [doc], "q2": [doc]})
    assert len(groups) == 1 and "ramipril" in groups[0].positive
    by_text = {c.search_text: c for c in index.chunks}
    assert all(record_id(by_text[n].doc_id) != doc for n in groups[0].negatives)
    assert miner.from_questions({"q": "ramipril"}, {"q": ["no-such-document"]}) == []


def test_max_groups_limits_the_sample(index):
    assert len(Miner(index, settings(max_groups=2)).from_titles()) == 2


def test_trained_reranker_loads_and_reranks(index, tmp_path):
    base = write_tiny_bert(tmp_path / "base-bert")
    groups = Miner(index, settings()).from_titles()
    steps = []
    report = train_reranker(
        groups,
        settings(base_model=str(base), epochs=8, learning_rate=1e-3, warmup=0.0),
        tmp_path / "reranker",
        data={"source": "test"},
        progress=lambda done, total: steps.append(total),
    )
    assert report.groups == len(groups) and report.steps == len(steps) == 8 * math.ceil(len(groups) / 2)
    assert math.isfinite(report.loss_first) and report.loss_last < report.loss_first  # it learns the groups
    recorded = json.loads((tmp_path / "reranker" / "training.json").read_text())
    assert recorded["kind"] == "reranker" and recorded["data"] == {"source": "test"}
    assert recorded["settings"]["negatives"] == 1 and "torch" in recorded["versions"]

    reranker = CrossEncoderReranker(RerankSettings(model=str(tmp_path / "reranker"))).load()
    assert reranker.model.max_length == 64  # the model's own max length, as trained
    head = [ScoredChunk(chunk=c, row=i, score=1.0, scores={}, ranks={}) for i, c in enumerate(index.chunks[:4])]
    out = reranker.run(Query(original="q", rewritten=groups[0].query, bm25_text="q"), head)
    assert sorted(c.ranks["rerank"] for c in out) == [1, 2, 3, 4]


def test_trained_encoder_embeds(index, tmp_path):
    from sentence_transformers import SentenceTransformer

    base = write_tiny_bert(tmp_path / "base-bert")
    groups = Miner(index, settings()).from_titles()
    report = train_encoder(groups, settings(base_model=str(base), epochs=2), tmp_path / "encoder")
    assert report.kind == "encoder" and math.isfinite(report.loss_last)
    model = SentenceTransformer(str(tmp_path / "encoder"), device="cpu")
    assert model.encode(["ramipril dose"]).shape == (1, 32)
    assert model.max_seq_length == SentenceTransformer(str(base)).max_seq_length  # not the training cut (64)


def test_training_refuses_empty_data_and_missing_models(tmp_path):
    with pytest.raises(TrainingError, match="no training groups"):
        train_reranker([], settings(), tmp_path / "x")
    from app.train.mining import TrainingGroup

    group = TrainingGroup(query="q", positive="p", negatives=("n",), source="title")
    with pytest.raises(TrainingError, match="cannot load base model"):
        train_reranker([group], settings(base_model=str(tmp_path / "missing")), tmp_path / "x")


def test_train_cli_errors_are_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CLINQA_INDEX__ROOT": str(tmp_path / "none")}
    r = clinqa("train", "reranker", "--negatives", "0", env=env)
    assert r.returncode == 2 and "invalid option --negatives" in r.stderr and "Traceback" not in r.stderr
    r = clinqa("train", "reranker", "--dataset", "trec", env=env)
    assert r.returncode == 2 and "--dataset must be pubmedqa or medquad" in r.stderr
    r = clinqa("train", "encoder", env=env)
    assert r.returncode == 1 and "clinqa index build" in r.stderr and "Traceback" not in r.stderr

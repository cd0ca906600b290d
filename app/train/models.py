"""Fine-tune the cross-encoder reranker and the bi-encoder on mined training groups.

Both are plain torch loops over the sentence-transformers models themselves (their own tokenisation
and forward pass), so training needs nothing beyond what serving loads. Both use the same listwise
objective: in each group the positive must outscore its hard negatives (softmax cross-entropy); the
bi-encoder also treats the other groups' passages in the batch as negatives. Output is a model folder
the pipeline loads by path, with `training.json` recording the data and settings.
"""

from __future__ import annotations

import json
import os
import platform
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from app.config import TrainSettings
from app.train.mining import TrainingGroup
from indexer.dense import resolve_model_path

M = TypeVar("M")
Progress = Callable[[int, int], None]  # (steps done now, total steps)

# Files of a sentence-transformers bi-encoder folder that describe its pooling pipeline; a cross-encoder
# built from the same weights must not see them (it would rebuild the bi-encoder).
_BI_ENCODER_FILES = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"}


class TrainingError(RuntimeError):
    """Training could not start or run; the message says why."""


@dataclass
class TrainReport:
    kind: str
    out: str
    base_model: str
    groups: int
    sources: dict[str, int]
    steps: int
    seconds: float
    pairs_per_s: float
    loss_first: float
    loss_last: float
    settings: dict
    data: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence-transformers": sentence_transformers.__version__,
    }


def _transformer_only(path: str, work: Path) -> str:
    """The Hugging Face part of a bi-encoder folder, linked into `work`; other paths are returned as given."""
    folder = Path(path)
    if not (folder / "modules.json").is_file():
        return path
    for item in folder.iterdir():
        if item.is_file() and item.name not in _BI_ENCODER_FILES:
            (work / item.name).symlink_to(item.resolve())
    return str(work)


def _batches(groups: list[TrainingGroup], size: int, rng: random.Random) -> Iterator[list[TrainingGroup]]:
    order = list(groups)
    rng.shuffle(order)
    for i in range(0, len(order), size):
        yield order[i : i + size]


def _check(groups: list[TrainingGroup], settings: TrainSettings) -> None:
    from transformers.utils import logging as hf_logging

    # The new classification head is reported as "newly initialized" by design; no weight-loading bars.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if not groups:
        raise TrainingError("no training groups: the corpus gave no (query, positive, negatives) examples")
    if settings.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise TrainingError(f"train.device={settings.device!r} but torch sees no CUDA device")


def _base_model(groups: list[TrainingGroup], settings: TrainSettings) -> str:
    """Check the inputs, seed torch, and resolve the starting weights (offline when they are a local folder)."""
    import torch

    _check(groups, settings)
    torch.manual_seed(settings.seed)
    base = resolve_model_path(settings.base_model)
    if os.path.isdir(base):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return base


def _load(settings: TrainSettings, build: Callable[[], M]) -> M:
    try:
        return build()
    except Exception as exc:  # OSError, ValueError, hub errors: all mean "cannot start from these weights"
        raise TrainingError(f"cannot load base model {settings.base_model!r}: {exc}") from exc


def _features(model, inputs: list) -> dict:
    """The model's own tokenisation of `inputs`, on the model's device."""
    from sentence_transformers.util import batch_to_device

    return batch_to_device(model.preprocess(inputs), model.device)


def _loop(
    model,
    groups: list[TrainingGroup],
    settings: TrainSettings,
    step_loss: Callable[[list[TrainingGroup]], object],
    progress: Progress | None,
) -> tuple[int, list[float], float]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    rng = random.Random(settings.seed)
    steps_per_epoch = -(-len(groups) // settings.batch_groups)
    total = steps_per_epoch * settings.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(settings.warmup * total), total)
    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for _ in range(settings.epochs):
        for batch in _batches(groups, settings.batch_groups, rng):
            loss = step_loss(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if progress:
                progress(1, total)
    model.eval()
    return total, losses, time.perf_counter() - started


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _finish(
    kind: str,
    out: Path,
    groups: list[TrainingGroup],
    settings: TrainSettings,
    steps: int,
    losses: list[float],
    seconds: float,
    pairs: int,
    data: dict,
) -> TrainReport:
    window = max(1, len(losses) // 10)
    report = TrainReport(
        kind=kind,
        out=str(out),
        base_model=settings.base_model,
        groups=len(groups),
        sources=dict(Counter(g.source for g in groups)),
        steps=steps,
        seconds=round(seconds, 2),
        pairs_per_s=round(pairs / seconds, 2) if seconds else 0.0,
        loss_first=_mean(losses[:window]),
        loss_last=_mean(losses[-window:]),
        settings=settings.model_dump(mode="json"),
        data=data,
        versions=_versions(),
    )
    (out / "training.json").write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return report


def train_reranker(
    groups: list[TrainingGroup],
    settings: TrainSettings,
    out: Path,
    data: dict | None = None,
    progress: Progress | None = None,
) -> TrainReport:
    """A cross-encoder (one relevance logit per pair) started from `settings.base_model`."""
    import torch
    from sentence_transformers import CrossEncoder

    base = _base_model(groups, settings)
    with tempfile.TemporaryDirectory(prefix="clinqa-base-") as work:
        model = _load(
            settings,
            lambda: CrossEncoder(
                _transformer_only(base, Path(work)),
                num_labels=1,
                max_length=settings.max_length,
                device=settings.device,
            ),
        )
    width = 1 + settings.negatives

    def step_loss(batch: list[TrainingGroup]):
        pairs = [(g.query, passage) for g in batch for passage in (g.positive, *g.negatives)]
        logits = model(_features(model, pairs))["scores"].float().view(len(batch), width)
        target = torch.zeros(len(batch), dtype=torch.long, device=logits.device)  # the positive is column 0
        return torch.nn.functional.cross_entropy(logits, target)

    steps, losses, seconds = _loop(model, groups, settings, step_loss, progress)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    pairs = len(groups) * width * settings.epochs
    return _finish("reranker", out, groups, settings, steps, losses, seconds, pairs, data or {})


def train_encoder(
    groups: list[TrainingGroup],
    settings: TrainSettings,
    out: Path,
    data: dict | None = None,
    progress: Progress | None = None,
    scale: float = 20.0,
) -> TrainReport:
    """A bi-encoder (normalised embeddings, cosine similarity) fine-tuned with in-batch and hard negatives."""
    import torch
    from sentence_transformers import SentenceTransformer

    base = _base_model(groups, settings)
    model = _load(settings, lambda: SentenceTransformer(base, device=settings.device))
    served_length = model.max_seq_length  # what the index build and queries will use; training may cut shorter
    model.max_seq_length = settings.max_length

    def embed(texts: list[str]):
        return torch.nn.functional.normalize(model(_features(model, texts))["sentence_embedding"].float(), dim=-1)

    def step_loss(batch: list[TrainingGroup]):
        queries = embed([g.query for g in batch])
        passages = embed([g.positive for g in batch] + [n for g in batch for n in g.negatives])
        logits = scale * queries @ passages.T  # row i's positive is column i
        target = torch.arange(len(batch), device=logits.device)
        return torch.nn.functional.cross_entropy(logits, target)

    steps, losses, seconds = _loop(model, groups, settings, step_loss, progress)
    model.max_seq_length = served_length
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    texts = len(groups) * (2 + settings.negatives) * settings.epochs
    return _finish("encoder", out, groups, settings, steps, losses, seconds, texts, data or {})

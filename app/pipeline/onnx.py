"""ONNX Runtime inference for the cross-encoder and the query encoder: the fast path on CPU.

`export_onnx(model_dir, int8=True)` exports a sentence-transformers model directory (a CrossEncoder or a
SentenceTransformer whose transformer sits at the directory's root, which is what `save()` writes) with
`torch.onnx` and, with `int8`, quantises its weights dynamically (`onnxruntime.quantization.quantize_dynamic`:
int8 weights, activations quantised per batch at run time). The files are cached in `MODEL_DIR/onnx/`
next to a stamp of the model's files: a second call reuses them, a changed model is exported again. When the
model directory is read-only (a model inside a root-owned virtualenv or image, served by an unprivileged user)
the export goes to `$CLINQA_ONNX_CACHE` (default `~/.cache/clinqa/onnx/`) instead, under a hash of the path.

`OnnxCrossEncoder.predict` and `OnnxSentenceEncoder.encode` mirror the sentence-transformers calls the
pipeline makes, so the reranker and the retriever use either backend unchanged. Torch stays the fallback
(and the reference: tests/app/pipeline/test_onnx.py compares int8 scores with fp32 ones by rank).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from app.config import EncoderSettings
from indexer.dense import EncoderLoadError, load_encoder, resolve_model_path

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
INSTALL_HINT = "pip install 'clinqa[onnx]'"
_OPSET = 17
_EXPORT_FORMAT = 1  # bump when the exported graph changes, so cached files are rebuilt
_MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt")


class OnnxUnavailableError(RuntimeError):
    """onnxruntime/onnx are not installed, or a model could not be exported or loaded."""


def onnx_available() -> bool:
    """Whether the `onnx` extra is installed. Without it the `fast` preset falls back to torch (with a warning
    naming the pip line), so the default configuration always starts."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxUnavailableError(f"the ONNX backend needs onnxruntime: {INSTALL_HINT}") from exc
    return onnxruntime


def onnx_file(model_dir: Path, precision: Precision) -> Path:
    return Path(model_dir) / "onnx" / ("model_int8.onnx" if precision == "int8" else "model.onnx")


def _fingerprint(model_dir: Path) -> str:
    """A hash of the files that shape the model's output (weights, config, vocabulary)."""
    digest = hashlib.sha256(f"format={_EXPORT_FORMAT};opset={_OPSET}".encode())
    for name in _MODEL_FILES:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _is_cross_encoder(model_dir: Path) -> bool:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _user_cache(model_dir: Path) -> Path:
    root = os.environ.get("CLINQA_ONNX_CACHE") or Path.home() / ".cache" / "clinqa" / "onnx"
    return Path(root) / hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder` (or in its nearest existing parent, which would create it)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def _stamp(out: Path) -> dict:
    path = out / "export.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _export_dir(model_dir: Path, fingerprint: str, int8: bool) -> Path:
    """`MODEL_DIR/onnx` unless it holds no up-to-date export and cannot be written; then the user cache."""
    beside = model_dir / "onnx"
    name = "model_int8.onnx" if int8 else "model.onnx"
    if _stamp(beside).get("fingerprint") == fingerprint and (beside / name).is_file():
        return beside  # exported before (e.g. at image build time): usable even when read-only
    if _writable(beside):
        return beside
    cache = _user_cache(model_dir)
    log.info(
        "model directory is read-only: ONNX export cached elsewhere",
        extra={"model": str(model_dir), "cache": str(cache)},
    )
    return cache


def export_onnx(model_dir: str | os.PathLike[str], int8: bool = True) -> Path:
    """Export `model_dir` to `model_dir/onnx/model.onnx` (and `model_int8.onnx` with `int8`); returns the file
    to load. Cached: files whose stamp matches the model's current fingerprint are reused. A read-only model
    directory is exported to the user cache instead (module docstring)."""
    _require_onnxruntime()
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime's quantization tools import the `onnx` package
        raise OnnxUnavailableError(f"ONNX export needs onnx and onnxruntime: {INSTALL_HINT}") from exc
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise OnnxUnavailableError(f"{model_dir} is not a model directory (no config.json)")
    fingerprint = _fingerprint(model_dir)
    out = _export_dir(model_dir, fingerprint, int8)
    stamp_path = out / "export.json"
    stamp = _stamp(out)
    fresh = stamp.get("fingerprint") == fingerprint
    fp32, q8 = out / "model.onnx", out / "model_int8.onnx"
    if not (fresh and fp32.is_file()):
        out.mkdir(parents=True, exist_ok=True)
        q8.unlink(missing_ok=True)
        _export_fp32(model_dir, fp32)
        stamp = {"fingerprint": fingerprint, "kind": "cross-encoder" if _is_cross_encoder(model_dir) else "encoder"}
        stamp_path.write_text(json.dumps(stamp, indent=2), encoding="utf-8")
        log.info("onnx exported", extra={"model": str(model_dir), "file": str(fp32)})
    if not int8:
        return fp32
    if not q8.is_file():
        tmp = q8.with_suffix(f".{os.getpid()}.tmp.onnx")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        tmp.replace(q8)
        log.info("onnx quantised", extra={"model": str(model_dir), "file": str(q8)})
    return q8


def _export_fp32(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    cross = _is_cross_encoder(model_dir)
    loader = AutoModelForSequenceClassification if cross else AutoModel
    model = loader.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["what is the first line drug"], ["for hypertension"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    output = "logits" if cross else "last_hidden_state"

    class _Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return getattr(self.model(**dict(zip(names, tensors, strict=True))), output)

    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = {0: "batch"} if cross else {0: "batch", 1: "sequence"}
    tmp = target.with_suffix(f".{os.getpid()}.tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes: expected here
        torch.onnx.export(
            _Wrapped(),
            tuple(sample[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, dynamic axes as named
        )
    tmp.replace(target)


def _session(path: Path, threads: int | None):
    ort = _require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between ops: on a small shared CPU (2 cores, other processes) spinning threads steal the
    # cores they wait for; measured here, 10 pairs of 128 tokens took 470 ms with spinning and 275 ms without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def _activation(model_dir: Path, num_labels: int) -> str:
    """The CrossEncoder's output activation (sigmoid for one label unless the model says otherwise)."""
    path = model_dir / "config_sentence_transformers.json"
    name = json.loads(path.read_text(encoding="utf-8")).get("activation_fn") if path.is_file() else None
    if name:
        return "sigmoid" if name.endswith("Sigmoid") else "identity"
    return "sigmoid" if num_labels == 1 else "identity"


class OnnxCrossEncoder:
    """A CrossEncoder on ONNX Runtime: `predict(pairs)` returns one score per pair, like sentence-transformers."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        precision: Precision = "int8",
        max_length: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.precision = precision
        path = export_onnx(self.model_dir, int8=precision == "int8")
        self.session = _session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = _tokenizer(self.model_dir)
        config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        self.num_labels = len(config.get("id2label") or {}) or 1
        self.activation = _activation(self.model_dir, self.num_labels)
        self.max_length = min(max_length or self.tokenizer.model_max_length or 512, 512)

    def predict(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 16, show_progress_bar: bool = False
    ) -> np.ndarray:
        del show_progress_bar  # the signature of CrossEncoder.predict; nothing to show
        scores: list[np.ndarray] = []
        for i in range(0, len(pairs), max(batch_size, 1)):
            part = pairs[i : i + batch_size]
            enc = self.tokenizer(
                [a for a, _ in part],
                [b for _, b in part],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            logits = self.session.run(None, {n: enc[n].astype(np.int64) for n in self.inputs})[0]
            scores.append(logits)
        out = np.concatenate(scores) if scores else np.empty((0, self.num_labels), dtype=np.float32)
        if self.activation == "sigmoid":
            out = 1.0 / (1.0 + np.exp(-out))
        return out[:, 0] if self.num_labels == 1 else out


class OnnxSentenceEncoder:
    """A SentenceTransformer (transformer + pooling [+ normalize]) on ONNX Runtime, with `encode()` and the
    `tokenizer` the pipeline uses."""

    def __init__(self, model_dir: str | os.PathLike[str], precision: Precision = "int8", threads: int | None = None):
        self.model_dir = Path(model_dir)
        self.precision = precision
        path = export_onnx(self.model_dir, int8=precision == "int8")
        self.session = _session(path, threads)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = _tokenizer(self.model_dir)
        modules = json.loads((self.model_dir / "modules.json").read_text(encoding="utf-8"))
        self.normalize = any(m["type"].endswith("Normalize") for m in modules)
        pooling_dir = next((m["path"] for m in modules if m["type"].endswith("Pooling")), "1_Pooling")
        pooling = json.loads((self.model_dir / pooling_dir / "config.json").read_text(encoding="utf-8"))
        self.pooling = (
            "cls"
            if pooling.get("pooling_mode_cls_token")
            else "max"
            if pooling.get("pooling_mode_max_tokens")
            else "mean"
        )
        self.dimension = int(pooling["word_embedding_dimension"])
        st_config = self.model_dir / "sentence_bert_config.json"
        seq = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length") if st_config.is_file() else None
        self.max_seq_length = int(seq or min(self.tokenizer.model_max_length, 512))

    def get_sentence_embedding_dimension(self) -> int:
        return self.dimension

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        del convert_to_numpy, show_progress_bar  # always numpy; nothing to show
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.empty((len(items), self.dimension), dtype=np.float32)
        # Similar lengths batched together waste less padding (what sentence-transformers does too).
        order = np.argsort([-len(t) for t in items], kind="stable")
        for i in range(0, len(items), max(batch_size, 1)):
            rows = order[i : i + batch_size]
            enc = self.tokenizer(
                [items[r] for r in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            hidden = self.session.run(None, {n: enc[n].astype(np.int64) for n in self.inputs})[0]
            out[rows] = self._pool(hidden, enc["attention_mask"])
        if self.normalize or normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask[..., None].astype(hidden.dtype)
        if self.pooling == "max":
            return np.where(m > 0, hidden, -1e9).max(axis=1)
        return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def load_query_encoder(settings: EncoderSettings):
    """The encoder for questions and evidence sentences at serving time: torch (`indexer.dense.load_encoder`, the
    same as index building) or ONNX Runtime (`encoder.query_backend`), behind an embedding cache."""
    from app.pipeline.cache import CachedEncoder

    if settings.query_backend == "onnx" and not onnx_available():
        log.warning(
            "onnxruntime is not installed: the query encoder runs on torch",
            extra={"stage": "retrieve", "fix": INSTALL_HINT},
        )
        settings = settings.model_copy(update={"query_backend": "torch"})
    if settings.query_backend == "torch":
        encoder = load_encoder(settings)
    else:
        path = resolve_model_path(settings.model)
        if not os.path.isdir(path):
            raise EncoderLoadError(
                f"encoder.query_backend=onnx needs a local model directory; {settings.model!r} resolved to {path!r}"
            )
        try:
            encoder = OnnxSentenceEncoder(path, settings.query_precision)
            log.info(
                "onnx query encoder loaded", extra={"model": settings.model, "precision": settings.query_precision}
            )
        except Exception as exc:  # export, quantisation or session errors: torch is the fallback
            log.warning(
                "cannot load the ONNX query encoder: it runs on torch",
                extra={"model": path, "error": f"{exc.__class__.__name__}: {exc}"},
            )
            settings = settings.model_copy(update={"query_backend": "torch"})
            encoder = load_encoder(settings)
    if settings.cache_size == 0:
        return encoder
    key = f"{settings.model}|{settings.query_backend}|{settings.query_precision}|{settings.precision}"
    return CachedEncoder(encoder, key, settings.cache_size)

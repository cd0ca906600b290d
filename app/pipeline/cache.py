"""Bounded LRU caches where a cached value is exactly what recomputing would give.

- Rerank scores are a function of (model and its inputs' shaping, query text, chunk); the key is
  (model key, query, chunk id, index version). Chunk ids are content hashes, and the index version is in
  the key as well, so a rebuilt index never serves a score computed against another version's chunk.
- Embeddings are a function of (model, text): `CachedEncoder` wraps an encoder's `encode()` and embeds only
  the texts it has not seen (queries, and the evidence sentences the extractive generator compares them to).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


class LruCache(Generic[V]):
    """A thread-safe LRU map with hit/miss counters; size 0 disables it."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"cache size must be >= 0, got {size}")
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


RerankKey = tuple[str, str, str, str]


def rerank_key(model: str, query: str, chunk_id: str, index_version: str) -> RerankKey:
    return (model, query, chunk_id, index_version)


class CachedEncoder:
    """An encoder whose `encode()` reuses embeddings of texts seen before (same model, same normalisation).

    Everything else (`tokenizer`, dimension) is the wrapped encoder's."""

    def __init__(self, encoder, model_key: str, size: int) -> None:
        self.encoder = encoder
        self.model_key = model_key
        self.cache: LruCache[np.ndarray] = LruCache(size)

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        if not items:
            return self.encoder.encode(items, batch_size=batch_size, normalize_embeddings=normalize_embeddings)
        found = [self.cache.get((self.model_key, normalize_embeddings, t)) for t in items]
        missing = list(dict.fromkeys(t for t, v in zip(items, found, strict=True) if v is None))
        if missing:
            vectors = np.asarray(
                self.encoder.encode(
                    missing,
                    batch_size=batch_size,
                    normalize_embeddings=normalize_embeddings,
                    convert_to_numpy=True,
                    show_progress_bar=show_progress_bar,
                ),
                dtype=np.float32,
            )
            fresh = dict(zip(missing, vectors, strict=True))
            for text, vector in fresh.items():
                vector.setflags(write=False)
                self.cache.put((self.model_key, normalize_embeddings, text), vector)
            found = [v if v is not None else fresh[t] for t, v in zip(items, found, strict=True)]
        out = np.stack(found)
        return out[0] if single else out

"""The on-disk index format: the contract between `indexer/` (writer) and `app/` (reader).

An index version is a directory `indexes/<version>/` holding:

- `manifest.json`   what was built, from what, with which settings and library versions
- `chunks.jsonl`    one `Chunk` per line, in the row order of the BM25 and FAISS indices
- `documents.json`  one `DocumentInfo` per source document
- `bm25/`           the bm25s index (its own saved parameters and vocabulary)
- `dense.faiss`     the FAISS index over L2-normalised embeddings (inner product = cosine)
- `embeddings.npy`  the embeddings themselves (float32, chunk row order): reused by incremental builds
- `graph.json`      the knowledge graph: concepts, relations, concept -> chunk postings

Versions are written to a hidden temporary directory and renamed into place, then `indexes/current`
(a symlink) is switched atomically, so a failed build never replaces a good index.
Nothing outside this module reads or writes these files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import bm25s
import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from indexer.loaders.base import map_offset
from knowledge.graph import KnowledgeGraph

FORMAT_VERSION = 2
CURRENT_LINK = "current"
_MANIFEST, _CHUNKS, _DOCUMENTS, _BM25, _DENSE, _EMBEDDINGS, _GRAPH = (
    "manifest.json",
    "chunks.jsonl",
    "documents.json",
    "bm25",
    "dense.faiss",
    "embeddings.npy",
    "graph.json",
)
HISTORY = "history.jsonl"
T = TypeVar("T")


class IndexUnavailableError(Exception):
    """No usable index: missing, incomplete, corrupt or built with incompatible settings."""


class IndexWriteError(OSError):
    """A version could not be written (disk full, file size limit, permissions); its partial files were removed.
    An OSError, so callers that handle failed writes handle this one; the message names the file."""


class Chunk(BaseModel):
    """A retrievable passage of one document section: `text` is source[start:end] as the loader rendered
    it (verbatim, except Markdown links shown as their text; `anchors` then map offsets back)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable id: hash of document id, section path and offsets.")
    doc_id: str
    ordinal: int = Field(description="Position of the chunk within its document.")
    section_path: tuple[str, ...]
    breadcrumb: str = Field(description="Section path joined with ' > ', e.g. 'Hypertension > Treatment'.")
    text: str
    start: int = Field(description="Character offset of the chunk in the source file.")
    end: int
    page: int | None = None
    n_tokens: int = Field(description="Encoder tokens of breadcrumb + text.")
    anchors: tuple[tuple[int, int], ...] = Field(
        default=(),
        description="(offset in text, offset in the source file) pairs where text is not the source verbatim.",
    )

    def source_offset(self, offset: int) -> int:
        """Character offset in the source file of `offset` in `text`."""
        return map_offset(self.anchors, offset, self.start)

    @property
    def search_text(self) -> str:
        """What BM25 and the encoder see: the breadcrumb gives each chunk its section context."""
        return f"{self.breadcrumb}\n{self.text}"


class DocumentInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    doc_id: str
    title: str
    source_path: str
    sha256: str
    n_chunks: int
    organisation: str | None = None
    url: str | None = None
    published: str | None = None
    reviewed: str | None = None
    version: str | None = None
    disclaimer: str | None = None


class EncoderInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    dimension: int
    max_seq_length: int


class SkippedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    reason: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    version: str
    index_id: str = Field(description="Hash of the settings that shape the index.")
    content_hash: str = Field(description="Hash of the documents' and vocabulary's contents.")
    created_at: str
    build_settings: dict[str, Any]
    encoder: EncoderInfo
    analyzer: dict[str, Any]
    faiss: dict[str, Any]
    libraries: dict[str, str]
    counts: dict[str, int]
    timings_s: dict[str, float]
    documents: list[DocumentInfo]
    skipped: list[SkippedFile] = []
    previous_version: str | None = Field(None, description="The version whose embeddings this build reused.")
    over_token_limit: list[str] = Field(default_factory=list, description="Chunk ids above the encoder limit.")


@dataclass
class IndexData:
    """Everything the online pipeline needs from one index version, loaded into memory."""

    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    documents: dict[str, DocumentInfo]
    bm25: bm25s.BM25
    dense: faiss.Index
    graph: KnowledgeGraph

    @property
    def version(self) -> str:
        return self.manifest.version


def new_version_name(index_id: str, now: datetime | None = None) -> str:
    """Sortable by creation time (to the millisecond), and naming the settings it was built with."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{index_id[:8]}"


def write_version(
    root: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    bm25: bm25s.BM25,
    dense: faiss.Index,
    embeddings: np.ndarray,
    graph: KnowledgeGraph,
) -> Path:
    """Write a complete version directory; it appears under its final name only when fully written.
    A failed write (a full disk, say) removes the partial directory and raises `IndexWriteError`."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / manifest.version
    if final.exists():
        raise FileExistsError(f"index version {manifest.version} already exists in {root}")
    tmp = root / f".tmp-{manifest.version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    step = _CHUNKS  # the file being written, for the error message
    try:
        with (tmp / _CHUNKS).open("w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(chunk.model_dump_json() + "\n")
        step = _DOCUMENTS
        docs = [d.model_dump(mode="json") for d in manifest.documents]
        (tmp / _DOCUMENTS).write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
        step = f"{_BM25}/"
        bm25.save(str(tmp / _BM25), show_progress=False)
        step = _DENSE
        faiss.write_index(dense, str(tmp / _DENSE))
        step = _EMBEDDINGS
        np.save(tmp / _EMBEDDINGS, np.ascontiguousarray(embeddings, dtype=np.float32))
        step = _GRAPH
        (tmp / _GRAPH).write_text(json.dumps(graph.to_dict(), ensure_ascii=False), encoding="utf-8")
        # The manifest goes last: a directory without one is never a valid version.
        step = _MANIFEST
        (tmp / _MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        step = f"the version directory {final.name}"
        os.rename(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # faiss reports its I/O failures as RuntimeError; both it and OSError mean "could not write".
        if isinstance(exc, OSError | RuntimeError):
            raise IndexWriteError(
                f"could not write {step} of index version {manifest.version} (the partial version was removed): "
                f"{_short_error(exc)}"
            ) from exc
        raise
    return final


def _short_error(exc: BaseException) -> str:
    """The useful end of an error message: faiss prefixes its own with the C++ function and source line."""
    message = str(exc)
    return message.rsplit("failed: ", 1)[-1] if isinstance(exc, RuntimeError) else message


def activate(root: Path, version: str) -> None:
    """Point `root/current` at `version` with one atomic rename, and record it in the history."""
    if not (root / version / _MANIFEST).is_file():
        raise IndexUnavailableError(f"cannot activate {version}: no manifest in {root / version}")
    tmp_link = root / f".{CURRENT_LINK}-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(version)
    os.replace(tmp_link, root / CURRENT_LINK)
    with (root / HISTORY).open("a", encoding="utf-8") as fh:
        fh.write(
            json.dumps({"version": version, "activated_at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n"
        )


def current_version(root: Path) -> str | None:
    link = root / CURRENT_LINK
    return link.resolve().name if link.exists() else None


def activation_history(root: Path) -> list[str]:
    """Versions in the order they were activated (oldest first)."""
    try:
        lines = (root / HISTORY).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out: list[str] = []
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            out.append(json.loads(line)["version"])
    return out


def previous_active(root: Path) -> str | None:
    """The version that was current before the current one and still exists (the rollback target)."""
    current = current_version(root)
    available = set(list_versions(root))
    history = activation_history(root)
    # Walk back past every activation of the current version to the one before it.
    while history and history[-1] == current:
        history.pop()
    for version in reversed(history):
        if version != current and version in available:
            return version
    return None


def remove_version(root: Path, version: str) -> None:
    """Delete a version directory; refuses the current one."""
    if version == current_version(root):
        raise IndexUnavailableError(f"refusing to delete the current version {version}")
    path = root / version
    if not (path / _MANIFEST).is_file():
        raise IndexUnavailableError(f"no index version {version} in {root}")
    trash = root / f".trash-{version}-{os.getpid()}"
    os.rename(path, trash)  # disappears atomically for readers, then is removed
    shutil.rmtree(trash, ignore_errors=True)


def remove_stale_temporaries(root: Path) -> list[str]:
    """Remove leftovers of builds that died before renaming their version into place."""
    removed = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and (p.name.startswith(".tmp-") or p.name.startswith(".trash-")):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return removed


def read_embeddings(path: Path) -> np.ndarray:
    """The stored embeddings of a version (memory-mapped: only rows that are used are read)."""
    try:
        return np.load(path / _EMBEDDINGS, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise IndexUnavailableError(f"unreadable embeddings in {path}: {exc.__class__.__name__}") from exc


def read_graph(path: Path) -> KnowledgeGraph:
    try:
        return KnowledgeGraph.from_dict(json.loads((path / _GRAPH).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailableError(f"unreadable {_GRAPH} in {path}: {exc.__class__.__name__}") from exc


def read_chunks(path: Path) -> list[Chunk]:
    try:
        with (path / _CHUNKS).open(encoding="utf-8") as fh:
            return [Chunk.model_validate_json(line) for line in fh if line.strip()]
    except (OSError, ValueError, ValidationError) as exc:
        raise IndexUnavailableError(f"unreadable {_CHUNKS} in {path}: {exc.__class__.__name__}") from exc


def list_versions(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".") and not p.is_symlink() and (p / _MANIFEST).is_file()
    )


def resolve_version(root: Path, version: str | None = None) -> Path:
    """The directory of `version`, or of the version `current` points to."""
    if version:
        path = root / version
    else:
        link = root / CURRENT_LINK
        if not link.exists():
            raise IndexUnavailableError(
                f"no index at {root}/current; build one with `clinqa index build` (or `make index`)"
            )
        path = link.resolve()
    if not (path / _MANIFEST).is_file():
        raise IndexUnavailableError(f"index version {path.name} not found or incomplete in {root}")
    return path


def read_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((path / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise IndexUnavailableError(f"unreadable {_MANIFEST} in {path}: {exc.__class__.__name__}") from exc


def _part_reader(version: str) -> Callable[[str, Callable[[], T]], T]:
    """`part(file, read)`: `read()`, with any failure reported as an unusable index naming the file."""

    def part(name: str, read: Callable[[], T]) -> T:
        try:
            return read()
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, ValidationError) as exc:
            raise IndexUnavailableError(
                f"index {version} is corrupt or incomplete: {name}: {exc.__class__.__name__}: {exc}"
            ) from exc

    return part


def read_index(path: Path) -> IndexData:
    """Load a version directory; any missing or inconsistent part raises `IndexUnavailableError`."""
    manifest = read_manifest(path)
    if manifest.format_version != FORMAT_VERSION:
        raise IndexUnavailableError(
            f"index {manifest.version} has format {manifest.format_version}, this clinqa reads "
            f"{FORMAT_VERSION}; rebuild it with `clinqa index build`"
        )
    part = _part_reader(manifest.version)
    chunks = read_chunks(path)
    docs = part(_DOCUMENTS, lambda: json.loads((path / _DOCUMENTS).read_text(encoding="utf-8")))
    documents = part(_DOCUMENTS, lambda: {d["doc_id"]: DocumentInfo.model_validate(d) for d in docs})
    bm25 = part(f"{_BM25}/", lambda: bm25s.BM25.load(str(path / _BM25), show_progress=False))
    dense = part(_DENSE, lambda: faiss.read_index(str(path / _DENSE)))
    if not (path / _EMBEDDINGS).is_file():
        raise IndexUnavailableError(f"index {manifest.version} is corrupt or incomplete: {_EMBEDDINGS} missing")
    graph = read_graph(path)
    n = len(chunks)
    sizes = {
        "chunks": n,
        "faiss": dense.ntotal,
        "graph": graph.n_chunks,
        "manifest": manifest.counts["chunks"],
    }
    if len(set(sizes.values())) != 1:
        raise IndexUnavailableError(f"index {manifest.version} is inconsistent: row counts {sizes}")
    if dense.d != manifest.encoder.dimension:
        raise IndexUnavailableError(
            f"index {manifest.version}: FAISS dimension {dense.d} != manifest {manifest.encoder.dimension}"
        )
    return IndexData(path, manifest, chunks, documents, bm25, dense, graph)

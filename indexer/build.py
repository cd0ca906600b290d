"""Build one index version from corpus directories: load -> chunk -> BM25 + dense + concept graph -> write.

`build_index` is the importable job; the CLI only adds a progress bar and a report table.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import platform
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bm25s
import numpy as np

from app.config import Settings
from indexer.analysis import Analyzer
from indexer.chunking import SectionChunker
from indexer.dense import build_faiss, embed, embedding_dimension, load_encoder, token_counter
from indexer.loaders import LOADERS, Document, LoaderError, load_file
from indexer.store import (
    FORMAT_VERSION,
    Chunk,
    DocumentInfo,
    EncoderInfo,
    IndexUnavailableError,
    Manifest,
    SkippedFile,
    activate,
    new_version_name,
    read_chunks,
    read_embeddings,
    read_graph,
    read_index,
    read_manifest,
    resolve_version,
    write_version,
)
from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker
from knowledge.schema import Vocabulary
from knowledge.sources import load_knowledge

log = logging.getLogger(__name__)

# stage name, items done in this call, total items for the stage
ProgressHook = Callable[[str, int, int], None]

_LIBRARIES = ("clinqa", "bm25s", "faiss-cpu", "sentence-transformers", "transformers", "torch", "networkx")


class BuildError(Exception):
    """The build cannot produce a valid index; nothing was activated."""


@dataclass
class BuildReport:
    version: str
    path: Path
    documents: int
    chunks: int
    embedded: int
    concepts: int
    relations: int
    seconds: float
    peak_memory_mb: float
    skipped: list[SkippedFile] = field(default_factory=list)
    over_token_limit: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    previous_version: str | None = None

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "path": str(self.path),
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.chunks - self.embedded,
            "previous_version": self.previous_version,
            "concepts": self.concepts,
            "relations": self.relations,
            "seconds": round(self.seconds, 3),
            "chunks_per_s": round(self.chunks_per_s, 2),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "over_token_limit": len(self.over_token_limit),
            "skipped": [s.model_dump() for s in self.skipped],
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }


def discover(corpus_paths: list[Path]) -> list[tuple[Path, Path]]:
    """(corpus root, file) for every supported file under each root, in a stable order."""
    found: list[tuple[Path, Path]] = []
    for root in corpus_paths:
        if not root.is_dir():
            raise BuildError(f"corpus directory not found: {root}")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in LOADERS)
        found.extend((root, p) for p in files)
    return found


def document_id(root: Path, path: Path) -> str:
    return f"{root.resolve().name}/{path.relative_to(root).with_suffix('').as_posix()}"


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def index_id(settings: Settings, analyzer: Analyzer) -> str:
    """Hash of exactly the settings that change what is written (not where it is written)."""
    return _hash(
        {
            "format": FORMAT_VERSION,
            "chunk": settings.chunk.model_dump(mode="json"),
            "encoder": settings.encoder.model,
            "analyzer": analyzer.config.as_dict(),
            "faiss": settings.faiss.model_dump(mode="json", exclude={"hnsw_ef_search", "ivf_nprobe"}),
        }
    )


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_documents(files: list[tuple[Path, Path]], progress: ProgressHook) -> tuple[list[Document], list[SkippedFile]]:
    docs: list[Document] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()
    for root, path in files:
        doc_id = document_id(root, path)
        try:
            loaded = load_file(path, doc_id)
            dupes = [d.doc_id for d in loaded if d.doc_id in seen]
            if dupes:
                raise LoaderError(str(path), f"duplicate document id {dupes[0]}")
            docs.extend(loaded)
            seen.update(d.doc_id for d in loaded)
        except LoaderError as exc:
            log.warning("skipped file", extra={"path": exc.path, "reason": exc.reason})
            skipped.append(SkippedFile(path=exc.path, reason=exc.reason))
        progress("load", 1, len(files))
    return docs, skipped


@dataclass
class _Previous:
    """What an incremental build can take from the current version: per document, its chunks with their
    rows (for the stored embeddings) and, when the vocabulary is unchanged, their concept mentions."""

    version: str
    sha256: dict[str, str]
    chunks: dict[str, list[tuple[int, Chunk]]]
    embeddings: np.ndarray
    mentions: list[list[str]] | None


def _load_previous(root: Path, iid: str, vocabulary_sha256: str) -> _Previous | None:
    try:
        path = resolve_version(root)
        manifest = read_manifest(path)
        if manifest.index_id != iid:
            log.info("full build: settings differ from the current version", extra={"current": manifest.version})
            return None
        chunks = read_chunks(path)
        embeddings = read_embeddings(path)
        mentions = None
        if manifest.build_settings.get("vocabulary_sha256") == vocabulary_sha256:
            graph = read_graph(path)
            mentions = [[] for _ in chunks]
            for cid in graph.posting_ids():
                for row, count in graph.postings(cid):
                    mentions[row].extend([cid] * count)
    except IndexUnavailableError as exc:
        log.info("full build: no usable current version", extra={"reason": str(exc)})
        return None
    if len(embeddings) != len(chunks):
        return None
    by_doc: dict[str, list[tuple[int, Chunk]]] = {}
    for row, chunk in enumerate(chunks):
        by_doc.setdefault(chunk.doc_id, []).append((row, chunk))
    return _Previous(manifest.version, {d.doc_id: d.sha256 for d in manifest.documents}, by_doc, embeddings, mentions)


def build_index(
    settings: Settings,
    progress: ProgressHook | None = None,
    activate_version: bool = True,
    incremental: bool = True,
) -> BuildReport:
    """Build, verify and (by default) activate a new index version under `settings.index.root`.

    Incremental (the default): documents whose content hash is unchanged since the current version keep
    their chunks, embeddings and concept mentions; only new or changed documents are chunked and
    embedded; deleted documents drop out. BM25 and the FAISS index are always rebuilt from all rows.
    """
    hook: ProgressHook = progress or (lambda stage, done, total: None)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    analyzer = Analyzer()

    t = time.perf_counter()
    files = discover(settings.corpus.paths)
    if not files:
        raise BuildError(
            f"no supported files ({', '.join(LOADERS)}) under {', '.join(map(str, settings.corpus.paths))}"
        )
    vocabulary = (
        load_knowledge(
            [settings.corpus.vocabulary, *settings.corpus.extra_vocabularies],
            settings.corpus.mappings,
            settings.corpus.abbreviations,
        )
        if settings.corpus.vocabulary
        else Vocabulary()
    )
    vocab_hash = _hash(vocabulary.model_dump(mode="json"))
    docs, skipped = _load_documents(files, hook)
    if not docs:
        raise BuildError(f"all {len(files)} input files were unreadable; first: {skipped[0].path}: {skipped[0].reason}")
    iid = index_id(settings, analyzer)
    previous = _load_previous(settings.index.root, iid, vocab_hash) if incremental else None
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    encoder = load_encoder(settings.encoder)
    timings["load_encoder"] = time.perf_counter() - t

    t = time.perf_counter()
    chunker = SectionChunker(settings.chunk, token_counter(encoder))
    chunks: list[Chunk] = []
    reused_rows: list[tuple[int, int]] = []  # (new row, previous row)
    doc_infos: list[DocumentInfo] = []
    for doc in docs:
        kept = previous.chunks.get(doc.doc_id) if previous and previous.sha256.get(doc.doc_id) == doc.sha256 else None
        if kept is not None:
            reused_rows.extend((len(chunks) + i, row) for i, (row, _) in enumerate(kept))
            doc_chunks = [c for _, c in kept]
        else:
            doc_chunks = chunker.run(doc)
        chunks.extend(doc_chunks)
        doc_infos.append(
            DocumentInfo(
                doc_id=doc.doc_id,
                title=doc.title,
                source_path=doc.source_path,
                sha256=doc.sha256,
                n_chunks=len(doc_chunks),
                organisation=doc.organisation,
                url=doc.url,
                published=doc.published,
                reviewed=doc.reviewed,
                version=doc.version,
                disclaimer=doc.disclaimer,
            )
        )
        hook("chunk", 1, len(docs))
    if not chunks:
        raise BuildError("the documents produced no chunks (all sections empty or skipped)")
    limit = int(encoder.max_seq_length) - 2  # [CLS] and [SEP]
    over_limit = [c.id for c in chunks if c.n_tokens > limit]
    if over_limit:
        log.warning("chunks over the encoder token limit", extra={"count": len(over_limit), "limit": limit})
    timings["chunk"] = time.perf_counter() - t

    t = time.perf_counter()
    texts = [c.search_text for c in chunks]
    vectors = np.empty((len(chunks), embedding_dimension(encoder)), dtype=np.float32)
    reused = {new for new, _ in reused_rows}
    if reused_rows and previous is not None:
        new_rows, old_rows = zip(*reused_rows, strict=True)
        vectors[list(new_rows)] = previous.embeddings[list(old_rows)]
    todo = [i for i in range(len(chunks)) if i not in reused]
    if todo:
        fresh = embed(
            encoder,
            [texts[i] for i in todo],
            settings.encoder.batch_size,
            on_batch=lambda n: hook("embed", n, len(todo)),
        )
        vectors[todo] = fresh
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    dense, faiss_info = build_faiss(vectors, settings.faiss, settings.encoder.device)
    timings["faiss"] = time.perf_counter() - t

    t = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(analyzer.tokens_many(texts), show_progress=False)
    timings["bm25"] = time.perf_counter() - t

    t = time.perf_counter()
    # Ambiguous abbreviations in a chunk are resolved through the vocabulary's relations to the chunk's
    # other concepts; with no evidence every sense is kept.
    linker = ConceptLinker(vocabulary.concepts, graph=KnowledgeGraph.build(vocabulary, []))
    old_mentions = dict(reused_rows) if previous is not None and previous.mentions is not None else {}
    mentions: list[list[str]] = []
    for row, text in enumerate(texts):
        if row in old_mentions:
            mentions.append(previous.mentions[old_mentions[row]])  # type: ignore[union-attr]
        else:
            mentions.append([m.concept_id for m in linker.link(text)])
        hook("concepts", 1, len(texts))
    graph = KnowledgeGraph.build(vocabulary, mentions)
    timings["graph"] = time.perf_counter() - t

    manifest = Manifest(
        version=new_version_name(iid),
        index_id=iid,
        content_hash=_hash({"docs": sorted(d.sha256 for d in doc_infos), "vocabulary": vocab_hash}),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_settings={
            "corpus": settings.corpus.model_dump(mode="json"),
            "chunk": settings.chunk.model_dump(mode="json"),
            "encoder": settings.encoder.model_dump(mode="json"),
            "faiss": settings.faiss.model_dump(mode="json"),
            "vocabulary_sha256": vocab_hash,
            "incremental": incremental,
        },
        encoder=EncoderInfo(
            model=settings.encoder.model,
            dimension=embedding_dimension(encoder),
            max_seq_length=int(encoder.max_seq_length),
        ),
        analyzer=analyzer.config.as_dict(),
        faiss=faiss_info,
        libraries=_library_versions(),
        counts={
            "documents": len(doc_infos),
            "chunks": len(chunks),
            "embedded": len(todo),
            "reused": len(reused),
            "concepts": graph.n_concepts,
            "relations": graph.n_relations,
            "skipped": len(skipped),
        },
        timings_s={k: round(v, 3) for k, v in timings.items()},
        documents=doc_infos,
        skipped=skipped,
        previous_version=previous.version if previous else None,
        over_token_limit=over_limit,
    )
    t = time.perf_counter()
    path = write_version(settings.index.root, manifest, chunks, bm25, dense, vectors, graph)
    try:
        verify_version(path)
    except IndexUnavailableError as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise BuildError(f"built version {manifest.version} did not verify and was removed: {exc}") from exc
    if activate_version:
        activate(settings.index.root, manifest.version)
    timings["write"] = time.perf_counter() - t
    return BuildReport(
        version=manifest.version,
        path=path,
        documents=len(doc_infos),
        chunks=len(chunks),
        embedded=len(todo),
        concepts=graph.n_concepts,
        relations=graph.n_relations,
        seconds=time.perf_counter() - t_start,
        peak_memory_mb=_peak_memory_mb(),
        skipped=skipped,
        over_token_limit=over_limit,
        timings_s=timings,
        previous_version=previous.version if previous else None,
    )


def verify_version(path: Path) -> None:
    """Read a version back the way the server will; raises `IndexUnavailableError` when it is not usable."""
    data = read_index(path)
    for chunk in data.chunks:
        if chunk.source_offset(len(chunk.text)) != chunk.end or chunk.source_offset(0) != chunk.start:
            raise IndexUnavailableError(f"chunk {chunk.id} offsets do not match its text length")

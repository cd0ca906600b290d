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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bm25s

from app.config import Settings
from indexer.analysis import Analyzer
from indexer.chunking import SectionChunker
from indexer.dense import build_faiss, embed, embedding_dimension, load_encoder, token_counter
from indexer.loaders import Document, LoaderError, load_markdown
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
    read_index,
    write_version,
)
from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker
from knowledge.schema import Vocabulary
from knowledge.vocabulary import load_vocabulary

log = logging.getLogger(__name__)

# stage name, items done in this call, total items for the stage
ProgressHook = Callable[[str, int, int], None]

_LOADERS = {".md": load_markdown, ".markdown": load_markdown}
_LIBRARIES = ("clinqa", "bm25s", "faiss-cpu", "sentence-transformers", "transformers", "torch", "networkx")


class BuildError(Exception):
    """The build cannot produce a valid index; nothing was activated."""


@dataclass
class BuildReport:
    version: str
    path: Path
    documents: int
    chunks: int
    concepts: int
    relations: int
    seconds: float
    peak_memory_mb: float
    skipped: list[SkippedFile] = field(default_factory=list)
    over_token_limit: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


def discover(corpus_paths: list[Path]) -> list[tuple[Path, Path]]:
    """(corpus root, file) for every supported file under each root, in a stable order."""
    found: list[tuple[Path, Path]] = []
    for root in corpus_paths:
        if not root.is_dir():
            raise BuildError(f"corpus directory not found: {root}")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _LOADERS)
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
            if doc_id in seen:
                raise LoaderError(str(path), f"duplicate document id {doc_id}")
            docs.append(_LOADERS[path.suffix.lower()](path, doc_id))
            seen.add(doc_id)
        except LoaderError as exc:
            log.warning("skipped file", extra={"path": exc.path, "reason": exc.reason})
            skipped.append(SkippedFile(path=exc.path, reason=exc.reason))
        progress("load", 1, len(files))
    return docs, skipped


def build_index(settings: Settings, progress: ProgressHook | None = None, activate_version: bool = True) -> BuildReport:
    """Build, verify and (by default) activate a new index version under `settings.index.root`."""
    hook: ProgressHook = progress or (lambda stage, done, total: None)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    analyzer = Analyzer()

    t = time.perf_counter()
    files = discover(settings.corpus.paths)
    if not files:
        raise BuildError(
            f"no supported files ({', '.join(_LOADERS)}) under {', '.join(map(str, settings.corpus.paths))}"
        )
    vocabulary = load_vocabulary(settings.corpus.vocabulary) if settings.corpus.vocabulary else Vocabulary()
    docs, skipped = _load_documents(files, hook)
    if not docs:
        raise BuildError(f"all {len(files)} input files were unreadable; first: {skipped[0].path}: {skipped[0].reason}")
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    encoder = load_encoder(settings.encoder)
    timings["load_encoder"] = time.perf_counter() - t

    t = time.perf_counter()
    chunker = SectionChunker(settings.chunk, token_counter(encoder))
    chunks: list[Chunk] = []
    doc_infos: list[DocumentInfo] = []
    for doc in docs:
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
    vectors = embed(encoder, texts, settings.encoder.batch_size, on_batch=lambda n: hook("embed", n, len(texts)))
    dense = build_faiss(vectors)
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(analyzer.tokens_many(texts), show_progress=False)
    timings["bm25"] = time.perf_counter() - t

    t = time.perf_counter()
    linker = ConceptLinker(vocabulary.concepts)
    mentions = []
    for text in texts:
        mentions.append([m.concept_id for m in linker.link(text)])
        hook("concepts", 1, len(texts))
    graph = KnowledgeGraph.build(vocabulary, mentions)
    timings["graph"] = time.perf_counter() - t

    iid = index_id(settings, analyzer)
    vocab_hash = _hash(vocabulary.model_dump(mode="json"))
    manifest = Manifest(
        version=new_version_name(iid),
        index_id=iid,
        content_hash=_hash({"docs": sorted(d.sha256 for d in doc_infos), "vocabulary": vocab_hash}),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_settings={
            "corpus": settings.corpus.model_dump(mode="json"),
            "chunk": settings.chunk.model_dump(mode="json"),
            "encoder": settings.encoder.model_dump(mode="json"),
        },
        encoder=EncoderInfo(
            model=settings.encoder.model,
            dimension=embedding_dimension(encoder),
            max_seq_length=int(encoder.max_seq_length),
        ),
        analyzer=analyzer.config.as_dict(),
        faiss={"type": "IndexFlatIP", "metric": "inner_product", "normalized": True},
        libraries=_library_versions(),
        counts={
            "documents": len(doc_infos),
            "chunks": len(chunks),
            "concepts": graph.n_concepts,
            "relations": graph.n_relations,
            "skipped": len(skipped),
        },
        timings_s={k: round(v, 3) for k, v in timings.items()},
        documents=doc_infos,
        skipped=skipped,
        over_token_limit=over_limit,
    )
    t = time.perf_counter()
    path = write_version(settings.index.root, manifest, chunks, bm25, dense, graph)
    try:
        verify_version(path)
    except IndexUnavailableError as exc:
        raise BuildError(f"built version {manifest.version} did not verify and was not activated: {exc}") from exc
    if activate_version:
        activate(settings.index.root, manifest.version)
    timings["write"] = time.perf_counter() - t
    return BuildReport(
        version=manifest.version,
        path=path,
        documents=len(doc_infos),
        chunks=len(chunks),
        concepts=graph.n_concepts,
        relations=graph.n_relations,
        seconds=time.perf_counter() - t_start,
        peak_memory_mb=_peak_memory_mb(),
        skipped=skipped,
        over_token_limit=over_limit,
        timings_s=timings,
    )


def verify_version(path: Path) -> None:
    """Read a version back the way the server will; raises `IndexUnavailableError` when it is not usable."""
    data = read_index(path)
    for chunk in data.chunks:
        if len(chunk.text) != chunk.end - chunk.start:
            raise IndexUnavailableError(f"chunk {chunk.id} offsets do not match its text length")

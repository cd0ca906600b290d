"""The online pipeline, wired explicitly: rewrite -> retrieve -> fuse -> rerank -> gate -> generate -> verify.

`Pipeline.load(settings)` does all heavy loading once (index, encoder, optional cross-encoder);
`search()` and `ask()` are then cheap to call from many threads.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.config import Settings
from app.pipeline.abstain import EvidenceGate
from app.pipeline.fuse import make_fuser
from app.pipeline.generate import ExtractiveGenerator
from app.pipeline.rerank import CrossEncoderReranker
from app.pipeline.retrieve import HybridRetriever
from app.pipeline.rewrite import QueryRewriter
from app.pipeline.terms import TermStatistics, query_terms
from app.pipeline.types import (
    Answer,
    Citation,
    EvidenceCheck,
    Query,
    ScoredChunk,
    Sentence,
    StageNote,
)
from app.pipeline.verify import CheckedSentence, CitationVerifier
from indexer.analysis import Analyzer
from indexer.dense import configure_search, load_encoder
from indexer.store import IndexData, IndexUnavailableError, read_index, resolve_version
from knowledge.linker import ConceptLinker

log = logging.getLogger(__name__)


class StageError(RuntimeError):
    """A pipeline stage failed; the message names the stage."""

    def __init__(self, stage: str, exc: BaseException) -> None:
        super().__init__(f"stage {stage!r} failed: {exc.__class__.__name__}: {exc}")
        self.stage = stage


@dataclass
class _Trace:
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[StageNote] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        except StageError:
            raise
        except Exception as exc:
            raise StageError(name, exc) from exc
        finally:
            self.timings_ms[name] = round((time.perf_counter() - t) * 1000, 2)


@dataclass(frozen=True)
class SearchOutcome:
    query: Query
    results: list[ScoredChunk]
    notes: list[StageNote]
    timings_ms: dict[str, float]
    index_version: str


@dataclass(frozen=True)
class AskOutcome:
    query: Query
    answer: Answer
    evidence: list[ScoredChunk]
    evidence_check: EvidenceCheck
    notes: list[StageNote]
    timings_ms: dict[str, float]
    index_version: str


def check_compatible(index: IndexData, settings: Settings, analyzer: Analyzer) -> None:
    """Refuse an index whose manifest does not match what this server would query it with."""
    m = index.manifest
    if m.encoder.model != settings.encoder.model:
        raise IndexUnavailableError(
            f"index {m.version} was built with encoder {m.encoder.model!r} but the server is configured "
            f"with {settings.encoder.model!r}; rebuild the index or set CLINQA_ENCODER__MODEL"
        )
    if m.analyzer != analyzer.config.as_dict():
        raise IndexUnavailableError(
            f"index {m.version} was built with analyzer {m.analyzer}, this clinqa uses "
            f"{analyzer.config.as_dict()}; rebuild the index"
        )


class Pipeline:
    def __init__(self, settings: Settings, index: IndexData, encoder, reranker: CrossEncoderReranker | None) -> None:
        self.settings = settings
        self.index = index
        self.encoder = encoder
        self.analyzer = Analyzer()
        check_compatible(index, settings, self.analyzer)
        configure_search(index.dense, settings.faiss)
        # Query-time sense choice for ambiguous abbreviations: corpus co-occurrence (PMI) plus relations.
        linker = ConceptLinker(index.graph.concepts(), context_score=index.graph.context_score)
        self.term_stats = TermStatistics(index)
        self.rewriter = QueryRewriter(settings.rewrite, linker, index.graph)
        self.retriever = HybridRetriever(settings.retrieve, index, self.analyzer, encoder)
        self.fuser = make_fuser(settings.fuse)
        self.reranker = reranker
        self.gate = EvidenceGate(settings.abstain, self.analyzer, index.graph)
        self.generator = ExtractiveGenerator(
            settings.generate, self.analyzer, linker, embed=self.retriever.dense.embed_many
        )
        self.verifier = CitationVerifier(settings.verify, self.analyzer)

    @classmethod
    def load(cls, settings: Settings) -> Pipeline:
        """Read the index and load the models; raises `IndexUnavailableError` with a readable reason."""
        index = read_index(resolve_version(settings.index.root, settings.index.version))
        if index.manifest.encoder.model != settings.encoder.model:
            check_compatible(index, settings, Analyzer())  # fail before the slow encoder load
        encoder = load_encoder(settings.encoder)
        reranker = CrossEncoderReranker(settings.rerank).load() if settings.rerank.model else None
        pipeline = cls(settings, index, encoder, reranker)
        pipeline.warm_up()
        log.info(
            "pipeline ready",
            extra={
                "index_version": index.version,
                "chunks": len(index.chunks),
                "reranker": settings.rerank.model,
            },
        )
        return pipeline

    def warm_up(self) -> None:
        """One throw-away question, so the first user does not pay for lazy kernel initialisation."""
        self.ask("warm-up question about treatment")

    def with_index(self, index: IndexData) -> Pipeline:
        """A pipeline over another index version that shares this one's loaded models."""
        return Pipeline(self.settings, index, self.encoder, self.reranker)

    @property
    def index_version(self) -> str:
        return self.index.version

    def search(self, text: str, top_k: int | None = None) -> SearchOutcome:
        trace = _Trace()
        t = time.perf_counter()
        query, results = self._retrieve(text, trace)
        trace.timings_ms["total"] = round((time.perf_counter() - t) * 1000, 2)
        return SearchOutcome(
            query,
            results[: top_k or self.settings.fuse.top_k],
            trace.notes,
            trace.timings_ms,
            self.index_version,
        )

    def ask(self, question: str) -> AskOutcome:
        trace = _Trace()
        t = time.perf_counter()
        query, results = self._retrieve(question, trace)
        evidence = results[: self.settings.generate.evidence_chunks]
        with trace.stage("gate"):
            terms = query_terms(query, self.analyzer, self.term_stats)
            check = self.gate.run(terms, evidence)
        if not check.sufficient:
            answer = _abstained(check.reason or "insufficient evidence")
        else:
            with trace.stage("generate"):
                draft = self.generator.run(query, terms, evidence)
            with trace.stage("verify"):
                checked = self.verifier.run(draft, evidence)
            answer = self._compose(checked, evidence)
        trace.timings_ms["total"] = round((time.perf_counter() - t) * 1000, 2)
        return AskOutcome(query, answer, evidence, check, trace.notes, trace.timings_ms, self.index_version)

    def _retrieve(self, text: str, trace: _Trace) -> tuple[Query, list[ScoredChunk]]:
        with trace.stage("rewrite"):
            query = self.rewriter.run(text)
        with trace.stage("retrieve"):
            ranked = self.retriever.run(query)
        with trace.stage("fuse"):
            fused = self.fuser.run(ranked, self.index.chunks)
        if self.reranker is None:
            trace.notes.append(
                StageNote(stage="rerank", status="skipped", message="no cross-encoder configured; fused order kept")
            )
            return query, fused
        t = time.perf_counter()
        try:
            fused = self.reranker.run(query, fused)
        except Exception as exc:  # an optional stage degrades instead of failing the request
            log.exception("rerank failed; keeping fused order", extra={"stage": "rerank"})
            trace.notes.append(
                StageNote(
                    stage="rerank",
                    status="degraded",
                    message=f"reranker failed ({exc.__class__.__name__}); fused order kept",
                )
            )
        trace.timings_ms["rerank"] = round((time.perf_counter() - t) * 1000, 2)
        return query, fused

    def _compose(self, checked: list[CheckedSentence], evidence: list[ScoredChunk]) -> Answer:
        if self.settings.verify.policy == "remove":
            kept = [s for s in checked if s.support != "unsupported"]
        else:
            kept = list(checked)
        if not kept:
            reason = (
                "no sentence in the retrieved passages answers the question closely enough"
                if not checked
                else "no drafted sentence could be verified against its cited passage"
            )
            return _abstained(reason)
        by_id = {c.chunk.id: c.chunk for c in evidence}
        numbers: dict[tuple[str, int, int], int] = {}
        citations: list[Citation] = []
        sentences: list[Sentence] = []
        for s in kept:
            nums: list[int] = []
            for ref in s.cites:
                key = (ref.chunk_id, ref.start, ref.end)
                if key not in numbers:
                    numbers[key] = len(numbers) + 1
                    chunk = by_id[ref.chunk_id]
                    doc = self.index.documents[chunk.doc_id]
                    citations.append(
                        Citation(
                            number=numbers[key],
                            chunk_id=chunk.id,
                            doc_id=chunk.doc_id,
                            title=doc.title,
                            breadcrumb=chunk.breadcrumb,
                            section_path=chunk.section_path,
                            organisation=doc.organisation,
                            url=doc.url,
                            published=doc.published,
                            reviewed=doc.reviewed,
                            disclaimer=doc.disclaimer,
                            quote=chunk.text[ref.start : ref.end],
                            start=ref.start,
                            end=ref.end,
                            source_start=chunk.source_offset(ref.start),
                            source_end=chunk.source_offset(ref.end),
                            chunk_text=chunk.text,
                        )
                    )
                nums.append(numbers[key])
            sentences.append(Sentence(text=s.text, citations=tuple(nums), support=s.support, support_reason=s.reason))
        verified = all(s.support == "supported" for s in sentences)
        text = " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}".strip() for s in sentences)
        return Answer(
            status="answered",
            reason=None if verified else "some sentences are not fully supported by their citations",
            verified=verified,
            text=text,
            sentences=tuple(sentences),
            citations=tuple(citations),
        )


def _abstained(reason: str) -> Answer:
    return Answer(status="abstained", reason=reason, verified=False, text="", sentences=(), citations=())

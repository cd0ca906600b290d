"""The online pipeline, wired explicitly: rewrite -> retrieve -> fuse -> rerank -> gate -> generate -> verify.

`Pipeline.load(settings)` does all heavy loading once (index, encoder, optional cross-encoder);
`search()` and `ask()` are then cheap to call from many threads.

Degraded operation (each case is listed in the response's `stages`):
- the cross-encoder fails or runs past `rerank.timeout_s`: the fused order is kept;
- the cross-encoder cannot be loaded at start-up: unless `rerank.required`, the pipeline runs without it
  (`Pipeline.unavailable` says why; /readyz shows it);
- the language model fails or runs past `generate.timeout_s` (`GenerationError`: refused connection,
  server killed mid-stream, schema violation, deadline): with `generate.fallback="extractive"` the
  extractive generator answers from the same evidence (see `_fall_back`); with "error" the request fails
  (502).
"""

from __future__ import annotations

import collections.abc
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.config import Settings
from app.pipeline.abstain import EvidenceGate
from app.pipeline.fuse import make_fuser
from app.pipeline.generate import ExtractiveGenerator, GenerationError, Generator
from app.pipeline.onnx import load_query_encoder
from app.pipeline.rerank import CrossEncoderReranker, RerankerLoadError, RerankTimeoutError
from app.pipeline.retrieve import HybridRetriever
from app.pipeline.rewrite import QueryRewriter
from app.pipeline.terms import QueryTerms, TermStatistics, query_terms
from app.pipeline.types import (
    Answer,
    Chunk,
    Citation,
    Draft,
    EvidenceCheck,
    Generation,
    Query,
    ScoredChunk,
    Sentence,
    SpanRef,
    StageNote,
    provenance,
)
from app.pipeline.verify import CheckedSentence, CitationVerifier, NliScorer
from indexer.analysis import Analyzer
from indexer.dense import configure_search
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
    def stage(self, name: str, accumulate: bool = False) -> Iterator[None]:
        """Time a stage (adding to its earlier time with `accumulate`, for stages that run piecewise)."""
        t = time.perf_counter()
        try:
            yield
        except StageError:
            raise
        except Exception as exc:
            raise StageError(name, exc) from exc
        finally:
            took = (time.perf_counter() - t) * 1000 + (self.timings_ms.get(name, 0.0) if accumulate else 0.0)
            self.timings_ms[name] = round(took, 2)


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
    generation: Generation


@dataclass(frozen=True)
class QueryEvent:
    """The question as rewritten, with its concepts."""

    query: Query


@dataclass(frozen=True)
class SourcesEvent:
    """The evidence the answer will be drawn from, and whether it suffices."""

    evidence: list[ScoredChunk]
    evidence_check: EvidenceCheck


@dataclass(frozen=True)
class SentenceEvent:
    """One verified sentence as it will be shown, with the citations it is the first to use."""

    sentence: Sentence
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class DoneEvent:
    outcome: AskOutcome


AskEvent = QueryEvent | SourcesEvent | SentenceEvent | DoneEvent
# One generator's run inside a request: yields the sentences shown, returns the generator's closing Draft.
DraftingEvents = collections.abc.Generator[SentenceEvent, None, Draft]


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
    def __init__(
        self,
        settings: Settings,
        index: IndexData,
        encoder,
        reranker: CrossEncoderReranker | None,
        llm: Generator | None = None,
        nli=None,
        unavailable: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        # Optional models that are configured but could not be loaded: stage -> reason. The pipeline runs
        # without them and says so in every response and in /readyz.
        self.unavailable: dict[str, str] = dict(unavailable or {})
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
        self.llm = llm
        # Also the fallback when the language model fails (`generate.fallback`).
        self.extractive = ExtractiveGenerator(
            settings.generate, self.analyzer, linker, embed=self.retriever.dense.embed_many
        )
        self.generator: Generator = llm or self.extractive
        self.verifier = CitationVerifier(settings.verify, self.analyzer, linker, embed=self.retriever.dense.embed_many)
        self.verifier.nli = nli

    @classmethod
    def load(cls, settings: Settings) -> Pipeline:
        """Read the index and load the models; raises `IndexUnavailableError` with a readable reason."""
        index = read_index(resolve_version(settings.index.root, settings.index.version))
        if index.manifest.encoder.model != settings.encoder.model:
            check_compatible(index, settings, Analyzer())  # fail before the slow encoder load
        encoder = load_query_encoder(settings.encoder)  # torch or ONNX (encoder.query_backend), cached
        reranker, unavailable = None, {}
        if settings.rerank.model:
            try:
                reranker = CrossEncoderReranker(settings.rerank).load()
            except RerankerLoadError as exc:
                if settings.rerank.required:
                    raise
                # A hospital expects answers to keep coming: start without the optional stage, and say so.
                log.error("starting without the cross-encoder", extra={"stage": "rerank", "reason": str(exc)})
                unavailable["rerank"] = (
                    f"the cross-encoder could not be loaded at start-up ({exc}); fused order kept (restart once "
                    "it is fixed; CLINQA_RERANK__REQUIRED=true refuses to start without it)"
                )
        llm = None
        if settings.generate.backend != "extractive":
            from app.pipeline.llm import load_llm_generator

            llm = load_llm_generator(settings.generate, settings.privacy)
        nli = NliScorer(settings.verify.nli_model) if settings.verify.nli_model else None
        pipeline = cls(settings, index, encoder, reranker, llm, nli, unavailable)
        pipeline.warm_up()
        log.info(
            "pipeline ready",
            extra={
                "index_version": index.version,
                "chunks": len(index.chunks),
                "reranker": settings.rerank.model,
                "generator": pipeline.generator.name,
                "nli": settings.verify.nli_model,
            },
        )
        return pipeline

    def warm_up(self) -> None:
        """One throw-away question, so the first user does not pay for lazy kernel initialisation. A language
        model that fails here (its server not up yet) does not stop the start: each request reports it."""
        try:
            self.ask("warm-up question about treatment")
        except StageError as exc:
            if exc.stage != "generate":
                raise
            log.warning("warm-up: the language model failed", extra={"stage": "generate", "reason": str(exc)})

    def with_index(self, index: IndexData) -> Pipeline:
        """A pipeline over another index version that shares this one's loaded models."""
        return Pipeline(
            self.settings, index, self.encoder, self.reranker, self.llm, self.verifier.nli, self.unavailable
        )

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
        *_, done = self.ask_events(question)
        assert isinstance(done, DoneEvent)
        return done.outcome

    def ask_events(self, question: str) -> Iterator[AskEvent]:
        """The answer as it is made: the rewritten query, the sources, each verified sentence as soon as it
        is checked, then the whole outcome. `ask()` is this, drained."""
        trace = _Trace()
        t = time.perf_counter()
        query, results = self._retrieve(question, trace)
        yield QueryEvent(query)
        evidence = results[: self.settings.generate.evidence_chunks]
        with trace.stage("gate"):
            terms = query_terms(query, self.analyzer, self.term_stats)
            check = self.gate.run(terms, evidence)
        yield SourcesEvent(evidence, check)
        generation = Generation(backend=self.generator.name, model=self.settings.generate.model if self.llm else None)
        if not check.sufficient:
            answer = _abstained(check.reason or "insufficient evidence")
        else:
            run = _Drafting(query, terms, evidence, _Composer(self.index, evidence, self.settings.verify.policy), trace)
            try:
                draft = yield from self._draft(self.generator, run)
            except StageError as exc:
                if not self._falls_back(exc):
                    raise
                draft = yield from self._fall_back(exc, run)
            composer = run.composer
            trace.timings_ms.setdefault("verify", 0.0)
            generation = Generation(
                backend=draft.generator,
                model=draft.model,
                prompt=draft.prompt,
                dropped_evidence=draft.dropped_evidence,
                redacted=draft.redacted,
            )
            if draft.dropped_evidence:
                trace.notes.append(
                    StageNote(
                        stage="generate",
                        status="degraded",
                        message=f"{len(draft.dropped_evidence)} lowest-ranked evidence passage(s) did not fit the "
                        f"model's context and were left out: {', '.join(draft.dropped_evidence)}",
                    )
                )
            answer = composer.answer(insufficient=draft.insufficient)
        trace.timings_ms["total"] = round((time.perf_counter() - t) * 1000, 2)
        yield DoneEvent(
            AskOutcome(query, answer, evidence, check, trace.notes, trace.timings_ms, self.index_version, generation)
        )

    def _draft(self, generator: Generator, run: _Drafting, fallback: bool = False) -> DraftingEvents:
        """Run `generator`, verifying and showing each sentence as it comes; returns its closing `Draft`.
        As a fallback, sentences repeating one already shown and those past `max_sentences` are left out."""
        stream = generator.stream(run.query, run.terms, run.evidence)
        while True:
            with run.trace.stage("generate", accumulate=True):
                item = next(stream, None)
                if item is None:
                    raise RuntimeError(f"the {generator.name} generator ended without a draft")
            if isinstance(item, Draft):
                return item
            if fallback and (
                len(run.composer.sentences) >= self.settings.generate.max_sentences
                or any(s.text == item.text for s in run.composer.sentences)
            ):
                continue
            with run.trace.stage("verify", accumulate=True):
                checked = self.verifier.check(item, run.chunks)
            shown = run.composer.add(checked)
            if shown is not None:
                yield SentenceEvent(*shown)

    def _falls_back(self, exc: StageError) -> bool:
        return (
            exc.stage == "generate"
            and self.llm is not None
            and isinstance(exc.__cause__, GenerationError)
            and self.settings.generate.fallback == "extractive"
        )

    def _fall_back(self, exc: StageError, run: _Drafting) -> DraftingEvents:
        """Answer with the extractive generator after the language model failed.

        Sentences the model wrote before it failed were verified and may already have reached the client
        (`/v1/ask/stream` sent them as `sentence` events), so they are kept, not taken back: the extractive
        sentences follow them, numbered on from the same citations, up to `max_sentences` in all. The
        stream's events thus stay exactly the `done` answer's sentences, in order, and the note in `stages`
        names the failed backend, the cause and how many sentences were kept.
        """
        failed, kept = self.generator.name, len(run.composer.sentences)
        log.warning(
            "language model failed; answering with the extractive generator",
            extra={"stage": "generate", "backend": failed, "reason": str(exc.__cause__), "kept_sentences": kept},
        )
        draft = yield from self._draft(self.extractive, run, fallback=True)
        message = f"the {failed} backend failed ({exc.__cause__}); answered by the extractive generator"
        if kept:
            message += f" after the {kept} verified sentence(s) the model had written, which were kept"
        run.trace.notes.append(StageNote(stage="generate", status="degraded", message=message))
        return draft

    def _retrieve(self, text: str, trace: _Trace) -> tuple[Query, list[ScoredChunk]]:
        with trace.stage("rewrite"):
            query = self.rewriter.run(text)
        with trace.stage("retrieve"):
            ranked = self.retriever.run(query)
        with trace.stage("fuse"):
            fused = self.fuser.run(ranked, self.index.chunks)
        if self.reranker is None:
            if "rerank" in self.unavailable:
                trace.notes.append(StageNote(stage="rerank", status="degraded", message=self.unavailable["rerank"]))
            else:
                trace.notes.append(
                    StageNote(stage="rerank", status="skipped", message="no cross-encoder configured; fused order kept")
                )
            return query, fused
        t = time.perf_counter()
        try:
            fused = self.reranker.run(query, fused, self.index_version, self.term_stats.idf)
        except RerankTimeoutError as exc:
            log.warning("rerank timed out; keeping fused order", extra={"stage": "rerank", "reason": str(exc)})
            trace.notes.append(StageNote(stage="rerank", status="degraded", message=f"{exc}; fused order kept"))
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


@dataclass
class _Drafting:
    """One request's generation: its inputs, the answer being composed and the trace."""

    query: Query
    terms: QueryTerms
    evidence: list[ScoredChunk]
    composer: _Composer
    trace: _Trace
    chunks: dict[str, Chunk] = field(init=False)

    def __post_init__(self) -> None:
        self.chunks = {c.chunk.id: c.chunk for c in self.evidence}


class _Composer:
    """Numbers citations in order of first use and assembles the answer, one verified sentence at a time."""

    def __init__(self, index: IndexData, evidence: list[ScoredChunk], policy: str) -> None:
        self.index = index
        self.by_id = {c.chunk.id: c.chunk for c in evidence}
        self.policy = policy
        self.numbers: dict[tuple[str, int, int], int] = {}
        self.citations: list[Citation] = []
        self.sentences: list[Sentence] = []
        self.removed = 0

    def add(self, checked: CheckedSentence) -> tuple[Sentence, tuple[Citation, ...]] | None:
        """The sentence as shown and the citations it introduces; None when the policy removes it."""
        if checked.support == "unsupported" and self.policy == "remove":
            self.removed += 1
            return None
        new: list[Citation] = []
        nums: list[int] = []
        for ref in checked.cites:
            key = (ref.chunk_id, ref.start, ref.end)
            if key not in self.numbers:
                self.numbers[key] = len(self.numbers) + 1
                new.append(self._citation(self.numbers[key], ref))
            nums.append(self.numbers[key])
        sentence = Sentence(
            text=checked.text, citations=tuple(nums), support=checked.support, support_reason=checked.reason
        )
        self.sentences.append(sentence)
        self.citations.extend(new)
        return sentence, tuple(new)

    def _citation(self, number: int, ref: SpanRef) -> Citation:
        chunk = self.by_id[ref.chunk_id]
        doc = self.index.documents[chunk.doc_id]
        return Citation(
            number=number,
            **provenance(chunk, doc),
            disclaimer=doc.disclaimer,
            quote=chunk.text[ref.start : ref.end],
            start=ref.start,
            end=ref.end,
            source_start=chunk.source_offset(ref.start),
            source_end=chunk.source_offset(ref.end),
            chunk_text=chunk.text,
        )

    def answer(self, insufficient: bool = False) -> Answer:
        if not self.sentences:
            if insufficient:
                reason = "the language model found that the retrieved passages do not answer the question"
            elif self.removed:
                reason = f"none of the {self.removed} drafted sentence(s) could be verified against its cited passage"
            else:
                reason = "no sentence in the retrieved passages answers the question closely enough"
            return _abstained(reason)
        verified = all(s.support == "supported" and s.citations for s in self.sentences)
        if verified:
            reason = None
        else:
            flagged = sum(s.support != "supported" for s in self.sentences)
            reason = f"{flagged} of {len(self.sentences)} sentence(s) are not fully supported by their citations"
        if self.removed:
            removed = f"{self.removed} unsupported sentence(s) removed"
            reason = f"{reason}; {removed}" if reason else removed
        text = " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}".strip() for s in self.sentences)
        return Answer(
            status="answered",
            reason=reason,
            verified=verified,
            text=text,
            sentences=tuple(self.sentences),
            citations=tuple(self.citations),
        )


def _abstained(reason: str) -> Answer:
    return Answer(status="abstained", reason=reason, verified=False, text="", sentences=(), citations=())

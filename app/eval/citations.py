"""Citation quality of the answers, as in ALCE (Gao et al., 2023), judged by the project's own verifier.

ALCE judges each (sentence, cited passages) pair with an NLI model; here the judge is
`CitationVerifier`, which answers supported / partial / unsupported. For a sentence citing the set C,
v(S) is the verifier's verdict on the sentence citing only S (v of the empty set is unsupported):

- citation recall: the sentence is supported by its citations together, v(C) = supported
  (lenient: supported or partial);
- citation precision: a citation c is irrelevant when on its own it does not support the sentence,
  v({c}) = unsupported, and removing it leaves the sentence's support unchanged, v(C - {c}) = v(C);
  precision is the share of citations that are not irrelevant;
- ALCE precision (binary, the paper's exact rule with "supported" as entailment): a citation counts
  only when v(C) = supported and not (v({c}) != supported and v(C - {c}) = supported).

Both are averaged per answer, then over answers (as ALCE does); pooled (micro) values are kept too.
They are computed twice: on the generator's draft (before verification) and on the answer as the
pipeline returns it. The evaluation runs the pipeline with verify.policy = "flag", so sentences the
verifier rejects stay visible; what the default policy ("remove") would have dropped is counted.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import random
import re
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.config import Settings
from app.eval.datasets import Collection
from app.pipeline.runner import AskOutcome, Pipeline
from app.pipeline.types import Draft, DraftSentence, ScoredChunk, SpanRef, SupportStatus
from indexer.build import BuildReport, build_index
from indexer.loaders.base import record_id

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SentenceScore:
    """One sentence's verdicts: on all its citations, and per citation (alone / left out)."""

    support: SupportStatus
    citations: int
    irrelevant: int
    alce_precise: int


@dataclass
class ViewStats:
    """Citation metrics over one view of the answers (the draft, or the answer as returned)."""

    answers: int = 0
    sentences: int = 0
    supported: int = 0
    partial: int = 0
    uncited: int = 0
    multi_cited: int = 0
    citations: int = 0
    irrelevant: int = 0
    alce_precise: int = 0
    gold_cited: int = 0
    gold_citations: int = 0
    # per-answer values, averaged at the end (ALCE's macro average)
    recall: list[float] = field(default_factory=list)
    recall_lenient: list[float] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)
    precision_alce: list[float] = field(default_factory=list)

    def add(self, scores: list[SentenceScore], cited_docs: list[str], gold: set[str]) -> None:
        if not scores:
            return
        n = len(scores)
        cites = sum(s.citations for s in scores)
        supported = sum(s.support == "supported" for s in scores)
        partial = sum(s.support == "partial" for s in scores)
        irrelevant = sum(s.irrelevant for s in scores)
        precise = sum(s.alce_precise for s in scores)
        self.answers += 1
        self.sentences += n
        self.supported += supported
        self.partial += partial
        self.uncited += sum(s.citations == 0 for s in scores)
        self.multi_cited += sum(s.citations > 1 for s in scores)
        self.citations += cites
        self.irrelevant += irrelevant
        self.alce_precise += precise
        self.gold_cited += any(d in gold for d in cited_docs)
        self.gold_citations += sum(d in gold for d in cited_docs)
        self.recall.append(supported / n)
        self.recall_lenient.append((supported + partial) / n)
        self.precision.append((cites - irrelevant) / cites if cites else 0.0)
        self.precision_alce.append(precise / cites if cites else 0.0)

    def summary(self) -> dict[str, float | int]:
        def mean(values: list[float]) -> float:
            return round(statistics.fmean(values), 4) if values else 0.0

        def share(a: int, b: int) -> float:
            return round(a / b, 4) if b else 0.0

        return {
            "answers": self.answers,
            "sentences": self.sentences,
            "citations": self.citations,
            "citation_recall": mean(self.recall),
            "citation_recall_lenient": mean(self.recall_lenient),
            "citation_precision": mean(self.precision),
            "citation_precision_alce": mean(self.precision_alce),
            "micro_recall": share(self.supported, self.sentences),
            "micro_recall_lenient": share(self.supported + self.partial, self.sentences),
            "micro_precision": share(self.citations - self.irrelevant, self.citations),
            "micro_precision_alce": share(self.alce_precise, self.citations),
            "sentences_supported": self.supported,
            "sentences_partial": self.partial,
            "sentences_unsupported": self.sentences - self.supported - self.partial,
            "sentences_uncited": self.uncited,
            "sentences_multi_cited": self.multi_cited,
            "irrelevant_citations": self.irrelevant,
            "gold_cited_rate": share(self.gold_cited, self.answers),
            "gold_citation_share": share(self.gold_citations, self.citations),
            "sentences_per_answer": round(self.sentences / self.answers, 3) if self.answers else 0.0,
            "citations_per_sentence": round(self.citations / self.sentences, 3) if self.sentences else 0.0,
        }


@dataclass
class CitationResult:
    collection: str
    questions: int
    questions_available: int
    documents: int
    chunks: int
    index_version: str
    answers: dict[str, Any]
    draft: dict[str, float | int]
    answer: dict[str, float | int]
    latency_ms: dict[str, Any]
    settings: dict[str, Any]
    verifier: dict[str, Any]
    machine: dict[str, Any]
    seconds: dict[str, float]
    notes: list[str]
    records: list[dict[str, Any]]
    command: str | None = None


def eval_settings(settings: Settings) -> Settings:
    """The settings to evaluate with: verify.policy = "flag", so no sentence is hidden from the metrics."""
    return settings.model_copy(update={"verify": settings.verify.model_copy(update={"policy": "flag"})})


def select_questions(collection: Collection, limit: int = 0, seed: int = 13) -> dict[str, str]:
    """All test questions, or a fixed random sample of `limit` of them (kept in collection order)."""
    queries = collection.queries
    if not limit or limit >= len(queries):
        return dict(queries)
    chosen = set(random.Random(seed).sample(sorted(queries), limit))
    return {q: t for q, t in queries.items() if q in chosen}


def _verdicts(pipeline: Pipeline, items: list[tuple[str, tuple[SpanRef, ...]]], evidence: list[ScoredChunk]):
    """The verifier's verdict for each (sentence, citations), in one call."""
    if not items:
        return []
    draft = Draft(sentences=tuple(DraftSentence(text=text, cites=cites) for text, cites in items))
    return [c.support for c in pipeline.verifier.run(draft, evidence)]


def score_sentences(
    pipeline: Pipeline, sentences: list[tuple[str, tuple[SpanRef, ...]]], evidence: list[ScoredChunk]
) -> list[SentenceScore]:
    """ALCE recall and precision counts for each sentence, from verifier runs on subsets of its citations."""
    cites_of = [tuple(dict.fromkeys(cites)) for _, cites in sentences]  # a span cited twice counts once
    jobs: list[tuple[str, tuple[SpanRef, ...]]] = []
    slots: list[tuple[int, list[int], list[int]]] = []  # per sentence: job of all, of each alone, of each left out
    for (text, _), cites in zip(sentences, cites_of, strict=True):
        full = len(jobs)
        jobs.append((text, cites))
        alone: list[int] = []
        without: list[int] = []
        if len(cites) > 1:  # one citation: alone is the full set, leaving it out leaves no citation
            for i, ref in enumerate(cites):
                alone.append(len(jobs))
                jobs.append((text, (ref,)))
                without.append(len(jobs))
                jobs.append((text, cites[:i] + cites[i + 1 :]))
        slots.append((full, alone, without))
    verdicts = _verdicts(pipeline, [(t, c) for t, c in jobs if c], evidence)
    it = iter(verdicts)
    v: list[SupportStatus] = [next(it) if c else "unsupported" for _, c in jobs]
    out: list[SentenceScore] = []
    for cites, (full, alone, without) in zip(cites_of, slots, strict=True):
        support = v[full]
        if len(cites) <= 1:
            alone_v = [support] * len(cites)
            without_v: list[SupportStatus] = ["unsupported"] * len(cites)
        else:
            alone_v = [v[j] for j in alone]
            without_v = [v[j] for j in without]
        irrelevant = sum(a == "unsupported" and w == support for a, w in zip(alone_v, without_v, strict=True))
        precise = (
            sum(not (a != "supported" and w == "supported") for a, w in zip(alone_v, without_v, strict=True))
            if support == "supported"
            else 0
        )
        out.append(SentenceScore(support=support, citations=len(cites), irrelevant=irrelevant, alce_precise=precise))
    return out


class _DraftRecorder:
    """Stands in for the pipeline's generator during the evaluation and keeps the draft of the last ask
    (the runner verifies the draft and does not return it)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.last: Draft | None = None

    def stream(self, *args, **kwargs):
        for item in self.inner.stream(*args, **kwargs):
            if isinstance(item, Draft):
                self.last = item
            yield item

    def run(self, *args, **kwargs) -> Draft:
        self.last = self.inner.run(*args, **kwargs)
        return self.last


def _draft(pipeline: Pipeline, outcome: AskOutcome, recorded: Draft | None) -> tuple[Draft | None, str]:
    """The generator's draft for this ask: the one the pipeline returned or was seen to make, else one
    generated again from the same query and evidence (deterministic for the extractive generator)."""
    draft = getattr(outcome, "draft", None)
    if isinstance(draft, Draft):
        return draft, "pipeline"
    if recorded is not None:
        return recorded, "recorded"
    if not outcome.evidence_check.sufficient:
        return None, "none"
    from app.pipeline.terms import query_terms

    terms = query_terms(outcome.query, pipeline.analyzer, pipeline.term_stats)
    return pipeline.generator.run(outcome.query, terms, outcome.evidence), "regenerated"


def _reason_kind(reason: str | None) -> str:
    """An abstention reason without its particulars (terms, scores), so reasons can be counted."""
    if not reason:
        return "(none given)"
    kind = re.sub(r"\s*\([^)]*\)", "", reason).split(":")[0].split(";")[0]
    return re.sub(r"\d+(?:\.\d+)?", "N", kind).strip()


def evaluate_answers(
    pipeline: Pipeline, collection: Collection, questions: dict[str, str], progress: Progress | None = None
) -> tuple[dict[str, Any], ViewStats, ViewStats, dict[str, Any], list[dict[str, Any]], dict[str, float]]:
    draft_stats, answer_stats = ViewStats(), ViewStats()
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    records: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    draft_sources: Counter[str] = Counter()
    seconds = {"ask": 0.0, "ask_cpu": 0.0, "metrics": 0.0}
    recorder = _DraftRecorder(pipeline.generator)
    for n, (qid, text) in enumerate(questions.items(), start=1):
        gold = {d for d, g in collection.qrels.get(qid, {}).items() if g > 0}
        recorder.last = None
        pipeline.generator = recorder
        t, cpu = time.perf_counter(), time.process_time()
        try:
            outcome = pipeline.ask(text)
        finally:
            pipeline.generator = recorder.inner
        elapsed = time.perf_counter() - t
        seconds["ask"] += elapsed
        seconds["ask_cpu"] += time.process_time() - cpu  # all threads; well below wall time when the CPU is shared
        latencies.append(elapsed * 1000)
        for stage, ms in outcome.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        t = time.perf_counter()
        answer = outcome.answer
        evidence_docs = [record_id(c.chunk.doc_id) for c in outcome.evidence]
        counts["gold_in_evidence"] += any(d in gold for d in evidence_docs)
        record: dict[str, Any] = {"id": qid, "status": answer.status, "ms": round(elapsed * 1000, 1)}

        draft, source = _draft(pipeline, outcome, recorder.last)
        draft_sources[source] += 1
        if draft is not None and draft.sentences:
            sentences = [(s.text, s.cites) for s in draft.sentences]
            by_id = {c.chunk.id: c.chunk for c in outcome.evidence}
            docs = [
                record_id(by_id[r.chunk_id].doc_id) for s in draft.sentences for r in s.cites if r.chunk_id in by_id
            ]
            draft_scores = score_sentences(pipeline, sentences, outcome.evidence)
            draft_stats.add(draft_scores, docs, gold)
            record["draft"] = [s.support for s in draft_scores]

        if answer.status == "answered":
            counts["answered"] += 1
            counts["verified"] += answer.verified
            by_number = {c.number: c for c in answer.citations}
            sentences = [
                (
                    s.text,
                    tuple(
                        SpanRef(chunk_id=by_number[k].chunk_id, start=by_number[k].start, end=by_number[k].end)
                        for k in s.citations
                    ),
                )
                for s in answer.sentences
            ]
            docs = [record_id(by_number[k].doc_id) for s in answer.sentences for k in s.citations]
            answer_scores = score_sentences(pipeline, sentences, outcome.evidence)
            answer_stats.add(answer_scores, docs, gold)
            kept = [s for s in answer.sentences if s.support != "unsupported"]
            counts["sentences_removed_by_policy_remove"] += len(answer.sentences) - len(kept)
            counts["answers_abstained_by_policy_remove"] += not kept
            counts["pipeline_verdict_differs"] += sum(
                s.support != a.support for s, a in zip(answer.sentences, answer_scores, strict=True)
            )
            record["verified"] = answer.verified
            record["answer"] = [
                [s.support, [record_id(by_number[k].doc_id) for k in s.citations]] for s in answer.sentences
            ]
            record["gold_cited"] = any(d in gold for d in docs)
        else:
            kind = _reason_kind(answer.reason)
            reasons[kind] += 1
            record["reason"] = answer.reason
        records.append(record)
        seconds["metrics"] += time.perf_counter() - t
        if progress is not None:
            progress(n, len(questions))

    total = max(1, len(questions))
    answered = counts["answered"]
    answers = {
        "answered": answered,
        "abstained": len(questions) - answered,
        "answer_rate": round(answered / total, 4),
        "abstention_rate": round((len(questions) - answered) / total, 4),
        "abstention_reasons": dict(reasons.most_common()),
        "verified_rate": round(counts["verified"] / answered, 4) if answered else 0.0,
        "gold_in_evidence_rate": round(counts["gold_in_evidence"] / total, 4),
        "policy_remove": {
            "sentences_removed": counts["sentences_removed_by_policy_remove"],
            "answers_turned_abstention": counts["answers_abstained_by_policy_remove"],
            "answer_rate": round((answered - counts["answers_abstained_by_policy_remove"]) / total, 4),
        },
        "pipeline_verdict_differs": counts["pipeline_verdict_differs"],
        "draft_source": dict(draft_sources),
    }
    latency = {
        "median": _percentile(latencies, 0.5),
        "p90": _percentile(latencies, 0.9),
        "mean": round(statistics.fmean(latencies), 1) if latencies else 0.0,
        "stage_medians": {stage: _percentile(values, 0.5) for stage, values in stages.items()},
    }
    return answers, draft_stats, answer_stats, latency, records, seconds


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def _git_state(path: Path) -> dict[str, Any]:
    """The commit that last changed `path`, HEAD, and whether `path` has uncommitted changes (empty outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "--short", "HEAD")
    if head is None:
        return {}
    return {
        "module_commit": git("log", "-1", "--format=%h", "--", path.name),
        "repo_commit": head,
        "module_uncommitted_changes": bool(git("status", "--porcelain", "--", path.name)),
    }


def _verifier_info(pipeline: Pipeline) -> dict[str, Any]:
    """Which verifier produced the verdicts: its source hash, and what it was built with."""
    verifier = pipeline.verifier
    module = inspect.getmodule(verifier)
    try:
        source = inspect.getsource(module or type(verifier))
        path = Path(inspect.getfile(module or type(verifier)))
    except (OSError, TypeError):
        source, path = "", None
    return {
        "class": type(verifier).__name__,
        "module_sha256": hashlib.sha256(source.encode()).hexdigest()[:16],
        **(_git_state(path) if path else {}),
        "uses_min_similarity": "min_similarity" in source,
        "embedder": getattr(verifier, "embed", None) is not None,
        "concept_linker": getattr(verifier, "linker", None) is not None,
        "nli_model": getattr(verifier.settings, "nli_model", None),
    }


def _settings_that_matter(settings: Settings) -> dict[str, Any]:
    sections = ("retrieve", "fuse", "rerank", "generate", "verify", "abstain")
    body = {name: getattr(settings, name).model_dump(mode="json") for name in sections}
    body["generate"].pop("api_key", None)
    body["encoder"] = settings.encoder.model
    return body


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch comes with sentence-transformers
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def evaluate_pipeline(
    pipeline: Pipeline,
    collection: Collection,
    limit: int = 0,
    seed: int = 13,
    progress: Progress | None = None,
) -> CitationResult:
    """Ask every (or a sample of `limit`) question of `collection` and score the citations."""
    machine = _machine()
    verifier = _verifier_info(pipeline)  # before asking: the source on disk may change during a long run
    questions = select_questions(collection, limit, seed)
    answers, draft, answer, latency, records, seconds = evaluate_answers(pipeline, collection, questions, progress)
    notes = list(collection.notes)
    if _verifier_info(pipeline)["module_sha256"] != verifier["module_sha256"]:
        notes.append(
            "the verifier's source file changed on disk during the run; the verdicts come from the version "
            f"loaded at the start (sha256 {verifier['module_sha256']})"
        )
    if len(questions) < len(collection.queries):
        notes.append(f"a fixed sample of {len(questions)} of {len(collection.queries)} questions (seed {seed})")
    if answers["draft_source"].get("regenerated"):
        notes.append(
            "the runner does not expose the pre-verification draft; it was generated again from the same query "
            f"and evidence with the pipeline's {type(pipeline.generator).__name__}"
        )
    if pipeline.settings.verify.policy != "flag":
        notes.append(
            f"verify.policy is {pipeline.settings.verify.policy!r}: sentences the verifier rejected are not in "
            "the 'answer' view"
        )
    if answer.sentences and not (answer.multi_cited or answer.uncited or draft.multi_cited or draft.uncited):
        notes.append(
            "every sentence cites exactly one passage, so precision cannot differ from lenient recall: "
            "an irrelevant citation is simply one that does not support its sentence"
        )
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return CitationResult(
        collection=collection.name,
        questions=len(questions),
        questions_available=len(collection.queries),
        documents=len(collection.documents),
        chunks=len(pipeline.index.chunks),
        index_version=pipeline.index_version,
        answers=answers,
        draft=draft.summary(),
        answer=answer.summary(),
        latency_ms=latency,
        settings=_settings_that_matter(pipeline.settings),
        verifier=verifier,
        machine=machine,
        seconds={k: round(v, 2) for k, v in seconds.items()},
        notes=notes,
        records=records,
    )


def evaluate_collection(
    collection: Collection,
    settings: Settings,
    limit: int = 0,
    seed: int = 13,
    progress: Progress | None = None,
) -> tuple[CitationResult, BuildReport]:
    """Build (or reuse) the collection's index, load the pipeline with verify.policy = "flag", evaluate."""
    t = time.perf_counter()
    report = build_index(settings)
    built = time.perf_counter() - t
    t = time.perf_counter()
    pipeline = Pipeline.load(eval_settings(settings))
    loaded = time.perf_counter() - t
    result = evaluate_pipeline(pipeline, collection, limit, seed, progress)
    result.seconds.update({"index": round(built, 2), "load": round(loaded, 2)})
    return result, report


# --- reporting ------------------------------------------------------------------------------------

_ROWS = (
    ("citation recall (supported)", "citation_recall"),
    ("citation recall (supported or partial)", "citation_recall_lenient"),
    ("citation precision", "citation_precision"),
    ("citation precision (ALCE binary)", "citation_precision_alce"),
    ("answers citing a gold document", "gold_cited_rate"),
    ("citations to a gold document", "gold_citation_share"),
    ("sentences per answer", "sentences_per_answer"),
    ("citations per sentence", "citations_per_sentence"),
)


def _fmt(value: float | int) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_section(result: CitationResult) -> str:
    a = result.answers
    stages = ", ".join(f"{k} {v:.0f} ms" for k, v in result.latency_ms.get("stage_medians", {}).items()) or "n/a"
    lines = [
        f"### {result.collection}: {result.questions} questions, {result.documents} documents, "
        f"{result.chunks} chunks (index {result.index_version})",
        "",
        "| metric | draft (before verification) | answer (as returned) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} | {_fmt(result.draft[key])} | {_fmt(result.answer[key])} |" for label, key in _ROWS]
    lines += [
        f"| sentences / citations | {result.draft['sentences']} / {result.draft['citations']} "
        f"| {result.answer['sentences']} / {result.answer['citations']} |",
        "",
        f"- answer rate {a['answer_rate']:.4f} ({a['answered']} answered, {a['abstained']} abstained); "
        f"verified answers {a['verified_rate']:.4f} of those answered",
        f"- with verify.policy = remove (the default): {a['policy_remove']['sentences_removed']} sentences "
        f"dropped, {a['policy_remove']['answers_turned_abstention']} more abstentions, answer rate "
        f"{a['policy_remove']['answer_rate']:.4f}",
        f"- gold document among the evidence the generator saw: {a['gold_in_evidence_rate']:.4f} of questions",
        f"- ask latency: median {result.latency_ms['median']:.0f} ms, p90 {result.latency_ms['p90']:.0f} ms "
        f"({result.machine.get('cpu_count')} CPUs shared with other jobs, load average "
        f"{result.machine.get('load_average_at_start')} at start, {result.machine.get('load_average_at_end')} "
        f"at end; process CPU time {result.seconds.get('ask_cpu', 0):.0f} s for {result.seconds.get('ask', 0):.0f} "
        f"s of asking); median per stage: {stages}",
    ]
    if a["abstention_reasons"]:
        top = "; ".join(f"{reason} ({n})" for reason, n in list(a["abstention_reasons"].items())[:4])
        lines.append(f"- abstention reasons: {top}")
    v = result.verifier
    commit = ""
    if v.get("module_commit"):
        dirty = ", with uncommitted changes" if v.get("module_uncommitted_changes") else ""
        commit = f"last changed in {v['module_commit']}{dirty}, repository at {v.get('repo_commit')}; "
    lines.append(
        f"- verifier: {v['class']} ({commit}source sha256 {v['module_sha256']}, min_similarity check "
        f"{'present' if v['uses_min_similarity'] else 'absent'}, embedder {'on' if v['embedder'] else 'off'}, "
        f"concept linker {'on' if v['concept_linker'] else 'off'}, NLI {v['nli_model'] or 'none'}); "
        f"generator backend {result.settings['generate']['backend']}"
    )
    lines += [f"- {note}" for note in result.notes]
    if result.command:
        lines += ["", f"Command: `{result.command}`"]
    return "\n".join(lines) + "\n"


def summary_table(result: CitationResult):
    """The same numbers as a rich table, for the terminal."""
    from rich.table import Table

    a = result.answers
    table = Table(
        title=f"{result.collection}: {result.questions} questions",
        caption=f"index {result.index_version}; ask latency p90 {result.latency_ms['p90']:.0f} ms",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("metric")
    table.add_column("draft", justify="right")
    table.add_column("answer", justify="right")
    for label, key in _ROWS:
        table.add_row(label, _fmt(result.draft[key]), _fmt(result.answer[key]))
    table.add_row("answer rate", "", f"{a['answer_rate']:.4f}")
    table.add_row("answer rate with policy=remove", "", f"{a['policy_remove']['answer_rate']:.4f}")
    table.add_row("verified (of answered)", "", f"{a['verified_rate']:.4f}")
    table.add_row("gold document in evidence", "", f"{a['gold_in_evidence_rate']:.4f}")
    table.add_row("median ask latency (ms)", "", f"{result.latency_ms['median']:.0f}")
    return table


SUMMARY_HEADER = """# Citation quality

How well the answers' citations support them, measured as in ALCE (Gao et al., 2023, "Enabling Large
Language Models to Generate Text with Citations") but with the project's own verifier
(`app/pipeline/verify.py`) as the judge instead of an NLI model. Each section below was written by
the command printed under it (`clinqa eval citations`), with the same `$VOCAB` options as the retrieval
evaluation (retrieval.md), on the test questions only, against the same per-collection index under
`.cache/eval`, with the default pipeline otherwise (hybrid retrieval, no reranker, extractive generator).

## What is measured

Every test question goes through `Pipeline.ask`, with `verify.policy = "flag"` so that sentences the
verifier rejects stay in the answer and count against it (the default policy, `remove`, drops them;
what it would have dropped is reported under each table). For a sentence citing the passages C, v(S) is
the verifier's verdict (supported / partial / unsupported) on the sentence citing only S:

- **citation recall**: share of sentences with v(C) = supported, i.e. the cited passages together
  support it; the lenient row also counts partial (nothing contradicts the passage, but it is not shown
  to say the same);
- **citation precision**: share of citations that are not irrelevant; a citation c is irrelevant when
  on its own it does not support the sentence, v({c}) = unsupported, and removing it leaves the
  sentence's support unchanged, v(C - {c}) = v(C) (for a single citation that is: it does not support
  the sentence);
- **citation precision (ALCE binary)**: ALCE's exact rule with "supported" as entailment: a citation
  counts only if v(C) = supported and not (v({c}) is not supported and v(C - {c}) = supported);
- recall and precision are averaged per answer, then over the answered questions (ALCE's average);
  the JSON also has the pooled (micro) values;
- **answers citing a gold document**: share of answers with at least one citation to the question's
  relevant document (PubMedQA: the question's own abstract; MedQuAD: the question's own answer);
  **citations to a gold document** is the same per citation;
- the **draft** column scores the generator's sentences before verification (taken from the generator
  as the pipeline runs it, so nothing is generated twice), the **answer** column
  the answer as the pipeline returns it (the verifier may re-point a citation to the span that
  supports the sentence, and drops the citations that do not when another one does).

## Caveats

- The default generator is extractive: every sentence is a verbatim quote of the passage it cites, so
  citation recall near 100% is expected by construction, and with one citation per sentence precision
  cannot differ from recall. The informative numbers are the answer rate, the abstention reasons and
  the gold-citation rates. An LLM backend (`generate.backend = llama_cpp | openai`) is measured the
  same way, with the same command, once a real model is configured; its paraphrases and multi-passage
  sentences are where recall and precision separate.
- The judge is the verifier itself, so these numbers measure agreement with the pipeline's own checks,
  not human judgement; a verifier that is too lenient inflates them. ALCE's NLI judge (TRUE, T5-11B)
  was not run.
- A gold document is one relevant document per question; an answer citing another abstract (PubMedQA)
  or another answer on the same topic (MedQuAD) can still be right. The extractive generator quotes at
  most `generate.max_sentences_per_chunk` (2) sentences from one chunk, so a three-sentence answer always
  quotes a second chunk, often of another document: the per-citation gold share is lower than the
  per-answer rate by construction.
- Every test question of both sets is answered by a document in the corpus, so every abstention here is a
  false abstention; how the gate treats questions the corpus cannot answer is not measured here.
- Latency is the wall time of `Pipeline.ask` on a shared 2-core CPU, excluding the extra verifier runs
  the precision metric needs.

"""


def write_summary(out: Path) -> Path:
    """`citations.md`: every collection's section found in `out` (from its JSON), under one header."""
    parts = [SUMMARY_HEADER]
    for js in sorted(out.glob("citations-*.json")):
        body = json.loads(js.read_text(encoding="utf-8"))
        body.setdefault("records", [])
        parts.append(markdown_section(CitationResult(**body)) + "\n")
    path = out / "citations.md"
    path.write_text("".join(parts).rstrip() + "\n", encoding="utf-8")
    return path


def write_outputs(result: CitationResult, out: Path, command: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if command:
        result.command = command
    js = out / f"citations-{result.collection}.json"
    body = asdict(result)
    records = body.pop("records")
    # One line per question, so the file stays readable and diffs stay small.
    head = json.dumps(body, indent=2)
    lines = ",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in records)
    js.write_text(f'{head[:-2]},\n  "records": [\n{lines}\n  ]\n}}\n', encoding="utf-8")
    return [js, write_summary(out)]

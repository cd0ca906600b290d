"""Calibrate the evidence gate's abstention thresholds on the PubMedQA and MedQuAD training splits.

    python bench/abstention.py                                      # fused evidence, no cross-encoder
    python bench/abstention.py --reranker models/reranker-pooled    # adds the cross-encoder's score
    python bench/abstention.py --limit 100                          # a quick look

The gate (`app/pipeline/abstain.py`) answers only when the evidence, the top `generate.evidence_chunks`
chunks of the fused (or reranked) list, covers enough of the question's IDF-weighted terms
(`query_coverage`), is close enough to it (`top_dense_score`, best cosine similarity) and, with a
cross-encoder, scores high enough with it (`top_rerank_score`). Each sampled training question goes
through the pipeline's own stages (rewrite -> retrieve -> fuse -> rerank, then the gate) in up to three cases:

  answerable     the index as built; kept only when the gold document is in the evidence
  gold removed   every chunk of the gold document dropped from each channel's list (depth 50) before
                 fusion: the question asked of a corpus without its answer (a proxy: another document
                 may still answer it)
  topic removed  MedQuAD only: every document on the gold document's focus (its title) dropped the same
                 way, a stricter proxy; reported, and used as an alternative target, never for the
                 recommendation

For each signal, and for the conjunctions the gate applies, thresholds are swept over a grid: answer rate
on the answerable case, abstention rate on the gold-removed case, and their mean (balanced accuracy).
The best threshold is picked per dataset, and one for both (the best mean over the datasets); ties go to
the threshold that answers more; a bootstrap over the questions gives its 90% interval. The current
settings' own verdicts (`EvidenceCheck.sufficient`) are reported beside them. Test questions are never used.
The cross-encoder scores each (question, passage) pair once across the cases; torch runs one thread by
default (--threads), which on a busy 2-core machine was many times faster than two.

The indexes are the retrieval evaluation's (`clinqa eval retrieval ... $VOCAB`, under .cache/eval),
prepared the same way, so an unchanged corpus is reused and nothing is re-embedded. Results of a run
replace that configuration's entry in bench/results/abstention.json (the other configuration's entry
is kept), and docs/results/abstention.md is rewritten from every entry.
Data are read in place from --data or $CLINQA_DATA (default ../shared/data); nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
SEED = 13
SIGNALS = ("coverage", "dense", "rerank")
LABELS = {"coverage": "min_query_coverage", "dense": "min_dense_score", "rerank": "min_rerank_score"}
CASES = ("answerable", "gold_removed", "topic_removed")

out = Console(width=None if sys.stdout.isatty() else 220)  # piped: wide enough for the tables, unwrapped
err = Console(stderr=True)


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


@dataclass
class Samples:
    """The gate's signals for one dataset, per case, in question order (NaN where a signal is absent)."""

    questions: int = 0
    signals: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {case: {s: [] for s in SIGNALS} for case in CASES}
    )
    sufficient: dict[str, list[bool]] = field(default_factory=lambda: {case: [] for case in CASES})

    def add(self, case: str, check) -> None:
        values = {"coverage": check.query_coverage, "dense": check.top_dense_score, "rerank": check.top_rerank_score}
        for name, value in values.items():
            self.signals[case][name].append(math.nan if value is None else float(value))
        self.sufficient[case].append(bool(check.sufficient))

    def array(self, case: str, signal: str) -> np.ndarray:
        return np.asarray(self.signals[case][signal], dtype=np.float64)

    def resample(self, rng: np.random.Generator) -> Samples:
        """A bootstrap replicate: each case's questions drawn with replacement."""
        copy = Samples(questions=self.questions)
        for case in CASES:
            n = len(self.sufficient[case])
            picks = rng.integers(0, n, n).tolist() if n else []
            for s in SIGNALS:
                copy.signals[case][s] = [self.signals[case][s][i] for i in picks]
            copy.sufficient[case] = [self.sufficient[case][i] for i in picks]
        return copy


def prepare(name: str, data: Path, work: Path, settings, sample_files: int):
    """The training collection and the settings of its index, exactly as `clinqa eval retrieval $VOCAB`
    prepares them (same documents, vocabularies, mappings and abbreviations: the index is reused)."""
    from app.eval.datasets import medquad, pubmedqa
    from app.eval.retrieval import prepare_index

    collection = pubmedqa(data, "train") if name == "pubmedqa" else medquad(data, "train", sample_files)
    onto = data / "ontology"
    run_settings = prepare_index(
        collection,
        work,
        settings,
        vocabularies=[Path("corpus/demo/vocabulary.yaml"), onto / "doid-2018-07-05.json.gz"],
        mappings=[onto / "mondo_exactmatch_doid.sssom.tsv", onto / "mondo_exactmatch_umls.sssom.tsv"],
        abbreviations=data / "abbreviations",
    )
    return collection, run_settings


def reuse_note(run_settings) -> str | None:
    """Why the build will embed from scratch, or None when the current version's settings match."""
    from indexer.analysis import Analyzer
    from indexer.build import index_id
    from indexer.store import IndexUnavailableError, read_manifest, resolve_version

    try:
        manifest = read_manifest(resolve_version(run_settings.index.root))
    except IndexUnavailableError as exc:
        return f"no index to reuse under {run_settings.index.root} ({exc})"
    if manifest.index_id != index_id(run_settings, Analyzer()):
        return f"index {manifest.version} was built with other chunk/encoder/FAISS settings"
    return None


class PairCache:
    """Wraps the cross-encoder so a (question, passage) pair is scored once: the lists with the gold document or
    its topic removed share most of their head with the full list, and the cross-encoder is the slow part."""

    def __init__(self, model) -> None:
        self.model = model
        self.scores: dict[tuple[str, str], float] = {}
        self.scored = self.asked = 0

    def predict(self, pairs: list[tuple[str, str]], **kwargs) -> list[float]:
        missing = list(dict.fromkeys(p for p in pairs if p not in self.scores))
        if missing:
            self.scores.update(zip(missing, map(float, self.model.predict(missing, **kwargs)), strict=True))
        self.asked += len(pairs)
        self.scored += len(missing)
        return [self.scores[p] for p in pairs]


def training_overlap(reranker: str | None, datasets: list[str]) -> list[str]:
    """Notes for each dataset whose training split the cross-encoder was trained on (its training.json)."""
    path = Path(reranker or "") / "training.json"
    if not reranker or not path.is_file():
        return []
    sources = json.loads(path.read_text(encoding="utf-8")).get("data", {}).get("sources", [])
    return [
        f"the cross-encoder was trained on {src['dataset']} ({src.get('groups')} groups from "
        f"{src.get('questions')} questions), the split sampled here: its scores are partly in-sample "
        "(the answerable case looks easier than on new questions); check min_rerank_score on the test split"
        for src in sources
        if src.get("dataset") in {f"{d}-train" for d in datasets}
    ]


def collect(pipeline, collection, limit: int, seed: int) -> Samples:
    """Ask each sampled question as is and with its gold document (and, where different, its topic) removed."""
    from app.pipeline.terms import query_terms
    from app.pipeline.types import RankedList
    from indexer.loaders.base import record_id

    index = pipeline.index
    doc_of_row = [record_id(c.doc_id) for c in index.chunks]
    title_of = {record_id(d): (info.title or "").strip().lower() for d, info in index.documents.items()}
    docs_on: dict[str, set[str]] = {}
    for doc, title in title_of.items():
        docs_on.setdefault(title, set()).add(doc)
    rows_of: dict[str, list[int]] = {}
    for row, doc in enumerate(doc_of_row):
        rows_of.setdefault(doc, []).append(row)
    top = pipeline.settings.generate.evidence_chunks
    if pipeline.reranker is not None and not isinstance(pipeline.reranker.model, PairCache):
        pipeline.reranker.model = PairCache(pipeline.reranker.model)

    def evidence(query, ranked: list[RankedList], drop: set[int]):
        if drop:
            ranked = [RankedList(channel=r.channel, hits=tuple(h for h in r.hits if h[0] not in drop)) for r in ranked]
        fused = pipeline.fuser.run(ranked, index.chunks)
        if pipeline.reranker is not None:
            fused = pipeline.reranker.run(query, fused)
        return fused[:top]

    qids = sorted(collection.queries)
    if limit and limit < len(qids):
        qids = sorted(random.Random(seed).sample(qids, limit))
    samples = Samples(questions=len(qids))
    for qid in qids:
        gold = {d for d, grade in collection.qrels.get(qid, {}).items() if grade > 0}
        query = pipeline.rewriter.run(collection.queries[qid])
        ranked = pipeline.retriever.run(query)
        terms = query_terms(query, pipeline.analyzer, pipeline.term_stats)
        found = evidence(query, ranked, set())
        if gold & {doc_of_row[c.row] for c in found}:
            samples.add("answerable", pipeline.gate.run(terms, found))
        gold_rows = {r for d in gold for r in rows_of.get(d, [])}
        samples.add("gold_removed", pipeline.gate.run(terms, evidence(query, ranked, gold_rows)))
        topic = set().union(*(docs_on.get(title_of.get(d, ""), {d}) for d in gold)) if gold else set()
        if topic - gold:
            topic_rows = {r for d in topic for r in rows_of.get(d, [])}
            samples.add("topic_removed", pipeline.gate.run(terms, evidence(query, ranked, topic_rows)))
    return samples


def grid(signal: str, values: np.ndarray) -> np.ndarray:
    """Candidate thresholds: 0.01 steps for coverage and cosine similarity; for the cross-encoder, whose scale
    is the model's own and often crowded near its ceiling (a sigmoid that tops out at ~0.915), 200 quantiles
    of its observed scores to 3 decimals, and its floor (answer everything)."""
    if signal in ("coverage", "dense"):
        return np.round(np.arange(0.0, 1.0 + 1e-9, 0.01), 2)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return np.asarray([0.0])
    cuts = np.round(np.quantile(finite, np.linspace(0, 1, 201)), 3)
    return np.unique(np.concatenate([[math.floor(float(finite.min()))], cuts]))


def answered(samples: Samples, case: str, signals: tuple[str, ...], grids: list[np.ndarray]) -> np.ndarray:
    """Share of the case's questions the rule answers (every signal at or above its threshold), over the grid.
    A missing signal (NaN) fails its test, as the gate abstains without a dense score."""
    passes = [
        (samples.array(case, s)[:, None] >= g[None, :]).astype(np.float64) for s, g in zip(signals, grids, strict=True)
    ]
    n = len(samples.signals[case]["coverage"])
    if n == 0:
        return np.full(tuple(len(g) for g in grids), math.nan)
    letters = "abcdefgh"[: len(signals)]
    counts = np.einsum(",".join(f"n{c}" for c in letters) + "->" + letters, *passes, optimize=True)
    return counts / n


@dataclass
class Sweep:
    rule: str
    signals: tuple[str, ...]
    grids: list[np.ndarray]
    answer: dict[str, np.ndarray]  # dataset -> answer rate on its answerable questions, over the grid
    abstain: dict[tuple[str, str], np.ndarray]  # (dataset, unanswerable case) -> abstention rate, over the grid

    def bacc(self, dataset: str, negative: str) -> np.ndarray:
        return (self.answer[dataset] + self.abstain[(dataset, negative)]) / 2

    def best(self, targets: list[tuple[str, str]]) -> tuple[int, ...]:
        """The grid point with the best mean balanced accuracy over the (dataset, unanswerable case) targets;
        ties go to the higher answer rate."""
        score = np.mean([self.bacc(d, n) for d, n in targets], axis=0)
        answer = np.mean([self.answer[d] for d, _ in targets], axis=0)
        best = np.round(score, 9) == np.round(score.max(), 9)
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(best, answer, -1.0))), score.shape))

    def point(self, at: tuple[int, ...]) -> dict:
        """The thresholds at a grid point and their rates on every dataset."""
        thresholds = {LABELS[s]: float(g[i]) for s, g, i in zip(self.signals, self.grids, at, strict=True)}
        per = {}
        for d in self.answer:
            topic = self.abstain.get((d, "topic_removed"))
            per[d] = {
                "answer_rate": round(float(self.answer[d][at]), 4),
                "abstain_rate": round(float(self.abstain[(d, "gold_removed")][at]), 4),
                "balanced_accuracy": round(float(self.bacc(d, "gold_removed")[at]), 4),
                "topic_abstain_rate": None if topic is None else round(float(topic[at]), 4),
            }
        return {"thresholds": thresholds, "datasets": per}


def sweep(rule: str, signals: tuple[str, ...], fixed: dict[str, float], samples: dict[str, Samples]) -> Sweep:
    pooled = {s: np.concatenate([x.array(c, s) for x in samples.values() for c in CASES]) for s in signals}
    grids = [np.asarray([fixed[s]]) if s in fixed else grid(s, pooled[s]) for s in signals]
    return Sweep(
        rule,
        signals,
        grids,
        {d: answered(x, "answerable", signals, grids) for d, x in samples.items()},
        {
            (d, case): 1 - answered(x, case, signals, grids)
            for d, x in samples.items()
            for case in CASES[1:]
            if x.sufficient[case]
        },
    )


def auroc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(an answerable question's signal > an unanswerable one's), ties counting half; NaN ranks lowest."""
    if not pos.size or not neg.size:
        return None
    p, n = np.nan_to_num(pos, nan=-np.inf), np.nan_to_num(neg, nan=-np.inf)
    greater = (p[:, None] > n[None, :]).mean()
    ties = (p[:, None] == n[None, :]).mean()
    return round(float(greater + ties / 2), 4)


def median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(statistics.median(finite.tolist())), 4) if finite.size else None


def rate(flags: list[bool], answer: bool) -> float | None:
    return round(sum(f == answer for f in flags) / len(flags), 4) if flags else None


def analyse(samples: dict[str, Samples], settings, reranked: bool, bootstrap: int, seed: int) -> dict:
    datasets = list(samples)
    used = SIGNALS if reranked else SIGNALS[:2]
    summary: dict[str, dict] = {}
    for d, x in samples.items():
        current = {
            "answer_rate": rate(x.sufficient["answerable"], True),
            "abstain_rate": rate(x.sufficient["gold_removed"], False),
            "topic_abstain_rate": rate(x.sufficient["topic_removed"], False),
        }
        if current["answer_rate"] is not None and current["abstain_rate"] is not None:
            current["balanced_accuracy"] = round((current["answer_rate"] + current["abstain_rate"]) / 2, 4)
        summary[d] = {
            "questions": x.questions,
            "cases": {c: len(x.sufficient[c]) for c in CASES},
            "medians": {c: {s: median(x.array(c, s)) for s in used} for c in CASES},
            "auroc": {
                c: {s: auroc(x.array("answerable", s), x.array(c, s)) for s in used}
                for c in CASES[1:]
                if x.sufficient[c]
            },
            "current": current,
        }
    a = settings.abstain
    rules: list[tuple[str, tuple[str, ...], dict[str, float]]] = [
        ("dense", ("dense",), {}),
        ("coverage", ("coverage",), {}),
        ("coverage & dense", ("coverage", "dense"), {}),
    ]
    if reranked:
        rules += [
            ("rerank", ("rerank",), {}),
            (
                "current gate & rerank",
                ("coverage", "dense", "rerank"),
                {"coverage": a.min_query_coverage, "dense": a.min_dense_score},
            ),
            ("coverage & dense & rerank", ("coverage", "dense", "rerank"), {}),
        ]
    # What each threshold is chosen to separate: a dataset's answerable questions from the same questions
    # with the gold document removed; both datasets at once; and, as a stricter reference, with the topic
    # removed (MedQuAD), alone and beside PubMedQA's gold-removed questions.
    targets: dict[str, list[tuple[str, str]]] = {d: [(d, "gold_removed")] for d in datasets}
    targets["both"] = [(d, "gold_removed") for d in datasets]
    topical = [d for d in datasets if samples[d].sufficient["topic_removed"]]
    for d in topical:
        targets[f"{d} (topic removed)"] = [(d, "topic_removed")]
    if topical and len(datasets) > 1:
        targets["both (topic removed where known)"] = [
            (d, "topic_removed" if d in topical else "gold_removed") for d in datasets
        ]
    sweeps = []
    rng = np.random.default_rng(seed)
    for rule, signals, fixed in rules:
        s = sweep(rule, signals, fixed, samples)
        entry = {"rule": rule, "chosen": {label: s.point(s.best(t)) for label, t in targets.items()}}
        # How far the thresholds chosen for both datasets move when the questions are resampled (skipped for
        # three free thresholds, whose grid is too large to sweep a few hundred times).
        if bootstrap and len(signals) - len(fixed) <= 2:
            picks: dict[str, list[float]] = {}
            for _ in range(bootstrap):
                b = sweep(rule, signals, fixed, {d: x.resample(rng) for d, x in samples.items()})
                for name, value in b.point(b.best(targets["both"]))["thresholds"].items():
                    picks.setdefault(name, []).append(value)
            entry["both_bootstrap_90"] = {
                k: [round(float(np.percentile(v, 5)), 4), round(float(np.percentile(v, 95)), 4)]
                for k, v in picks.items()
                if k not in {LABELS[f] for f in fixed}
            }
        sweeps.append(entry)
    return {"datasets": summary, "sweeps": sweeps, "bootstrap": bootstrap}


def recommended(result: dict) -> dict[str, float]:
    """The settings to use: the gate's own conjunction, chosen for both datasets."""
    rule = "coverage & dense & rerank" if result["reranker"] else "coverage & dense"
    return next(s["chosen"]["both"]["thresholds"] for s in result["analysis"]["sweeps"] if s["rule"] == rule)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


SHORT = {"min_query_coverage": "coverage", "min_dense_score": "dense", "min_rerank_score": "rerank"}


def table_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """Rule, what it was chosen on, thresholds; then per dataset: answer %, abstain % (gold removed),
    balanced accuracy % and, where known, abstain % with the topic removed; then the mean balanced accuracy."""
    analysis = result["analysis"]
    datasets = list(analysis["datasets"])
    topical = {d for d, info in analysis["datasets"].items() if info["cases"]["topic_removed"]}
    header = ["rule", "chosen on", "thresholds"]
    for d in datasets:
        header += [f"{d}\nanswer %", f"{d}\nabstain %", f"{d}\nbal. acc %"]
        header += [f"{d}\ntopic abstain %"] if d in topical else []
    header.append("mean\nbal. acc %")

    def cells(rates: dict[str, dict]) -> list[str]:
        row, baccs = [], []
        for d in datasets:
            r = rates[d]
            row += [pct(r["answer_rate"]), pct(r["abstain_rate"]), pct(r.get("balanced_accuracy"))]
            row += [pct(r["topic_abstain_rate"])] if d in topical else []
            baccs.append(r.get("balanced_accuracy") or 0.0)
        return [*row, pct(sum(baccs) / len(baccs))]

    a = result["settings"]["abstain"]
    current = {SHORT[k]: a[k] for k in LABELS.values() if a.get(k) is not None}
    rows = [
        [
            "current settings",
            "-",
            ", ".join(f"{k} {v:g}" for k, v in current.items()),
            *cells({d: i["current"] for d, i in analysis["datasets"].items()}),
        ]
    ]
    for s in analysis["sweeps"]:
        for chosen_on, point in s["chosen"].items():
            thresholds = ", ".join(f"{SHORT[k]} {v:g}" for k, v in point["thresholds"].items())
            rows.append([s["rule"], chosen_on, thresholds, *cells(point["datasets"])])
    return header, rows


def median_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    """Median of each signal per case, and how well it separates answerable from unanswerable (AUROC)."""
    analysis = result["analysis"]
    signals = list(next(iter(analysis["datasets"].values()))["medians"]["answerable"])
    header = ["dataset", "case", "questions", *(f"median\n{s}" for s in signals), *(f"AUROC\n{s}" for s in signals)]
    rows = []
    for d, info in analysis["datasets"].items():
        for case in CASES:
            if info["cases"][case]:
                medians = [f"{info['medians'][case][s]}" for s in signals]
                aucs = [f"{info['auroc'][case][s]}" if case in info["auroc"] else "" for s in signals]
                rows.append([d, case.replace("_", " "), str(info["cases"][case]), *medians, *aucs])
    return header, rows


def print_tables(result: dict) -> None:
    for title, (header, rows) in (
        (f"Abstention thresholds ({result['configuration']})", table_rows(result)),
        ("Gate signals: medians and separability", median_rows(result)),
    ):
        table = Table(title=title, title_justify="left")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < 3 else "right")
        for r in rows:
            table.add_row(*r)
        out.print(table)


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    header = [h.replace("\n", " ") for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 3)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


DOC_HEADER = """# Abstention thresholds, calibrated on the training splits

Written by `bench/abstention.py` (JSON: `bench/results/abstention.json`); each configuration's section
below says how it was run. Rerun it after changing the encoder, the fusion or the reranker.

## Method

The evidence gate (`app/pipeline/abstain.py`) abstains before generation when the evidence (the top
`generate.evidence_chunks` = 5 chunks of the fused, or reranked, list) covers less than
`abstain.min_query_coverage` of the question's IDF-weighted terms, when the best cosine similarity
between the question and an evidence chunk is below `abstain.min_dense_score`, or, with a cross-encoder,
when its best score is below `abstain.min_rerank_score`.

Each sampled **training** question (PubMedQA: of the 500 not in test_ground_truth.json; MedQuAD: of the
training files of the same 1,000-file sample the retrieval evaluation uses; test questions are never
asked) goes through the pipeline's own stages (rewrite, retrieve, fuse, rerank, gate) over the retrieval
evaluation's indexes, in up to three cases:

- **answerable**: as indexed; kept only when the gold document is among the 5 evidence chunks, so the
  evidence does contain the answer;
- **gold removed**: every chunk of the gold document dropped from each retrieval channel's list before
  fusion (and reranking), i.e. the same question asked of a corpus that lacks its answer;
- **topic removed** (MedQuAD only; PubMedQA's documents have no shared topic): every document with the
  gold document's focus (its title: the disease or drug) dropped the same way.

For each signal, and for the conjunctions the gate applies, thresholds are swept (0.01 steps; the
cross-encoder's: 200 quantiles of its scores): the **answer rate** on the answerable case, the **abstention
rate** on the gold-removed case and their mean, the **balanced accuracy** (the "topic abstain" column is
the abstention rate on the topic-removed case). The best thresholds are chosen ("chosen on") per dataset,
for both datasets at once (best mean balanced accuracy; ties go to the thresholds that answer more), and,
as a stricter reference, against MedQuAD's topic-removed case (alone, and beside PubMedQA's gold-removed
case); each chosen point is then reported on every dataset. "current settings" are the gate's own
verdicts with the run's settings. The bootstrap interval (5th-95th percentile over resampled questions)
shows how firmly the data pin a threshold down; AUROC is the chance that an answerable question's signal
beats an unanswerable one's, whatever the threshold.

**Caveat: "gold removed" is a proxy for unanswerable.** Other documents may still answer some of those
questions: PubMedQA abstracts overlap in topic, and MedQuAD answers several questions about each focus
(its symptoms, causes, treatment, ...) in separate documents that mention each other's terms, often in
several of its sources (GARD, GHR, MedlinePlus, ...). Abstaining on those is scored as correct here but
would not always be; on MedQuAD the gold-removed case is mostly "same topic, another aspect", which is
why no threshold separates it well and why the topic-removed case is reported beside it. The thresholds
are chosen and reported on the same questions (in-sample), which flatters them slightly; with one to
three parameters and hundreds of questions the optimism is small. The test splits stay untouched for a
later check.
"""


def describe(rates: dict[str, dict]) -> str:
    """'PubMedQA answers 97.0% / abstains 58.3% ...' for one set of thresholds."""
    parts = []
    for d, r in rates.items():
        topic = f", topic removed {pct(r['topic_abstain_rate'])}%" if r.get("topic_abstain_rate") is not None else ""
        parts.append(f"{d} answers {pct(r['answer_rate'])}% / abstains {pct(r['abstain_rate'])}%{topic}")
    mean = sum(r.get("balanced_accuracy") or 0.0 for r in rates.values()) / max(1, len(rates))
    return f"{'; '.join(parts)} (mean balanced accuracy {pct(mean)}%)"


def summary_lines(result: dict) -> list[str]:
    """The current settings and the thresholds chosen for both datasets, in words."""
    a = result["settings"]["abstain"]
    current = ", ".join(f"{SHORT[k]} {a[k]:g}" for k in LABELS.values() if a.get(k) is not None)
    rates = {d: info["current"] for d, info in result["analysis"]["datasets"].items()}
    lines = [f"- current settings ({current}): {describe(rates)}."]
    for s in result["analysis"]["sweeps"]:
        point = s["chosen"]["both"]
        chosen = ", ".join(f"{SHORT[k]} {v:g}" for k, v in point["thresholds"].items())
        spread = s.get("both_bootstrap_90")
        interval = (
            " (bootstrap 90% interval: "
            + ", ".join(f"{SHORT[k]} {lo:g}-{hi:g}" for k, (lo, hi) in spread.items())
            + ")"
            if spread
            else ""
        )
        lines.append(f"- {s['rule']}, chosen for both: {chosen}{interval}: {describe(point['datasets'])}.")
    return lines


def write_markdown(path: Path, results: dict) -> None:
    lines = [DOC_HEADER]
    for key, result in results["runs"].items():
        header, rows = table_rows(result)
        m_header, m_rows = median_rows(result)
        rec = recommended(result)
        lines += [
            f"## {key}",
            "",
            f"`{result['command']}` on {result['machine']}, {result['date']}: {result['limit']} training questions "
            f"per dataset (seed {result['seed']}), {result['seconds']:.0f} s; indexes "
            + ", ".join(f"{d} {i['version']} ({i['embedded']} chunks embedded)" for d, i in result["indexes"].items())
            + ". Rates in %; answer: of the answerable questions; abstain: of the gold-removed ones; topic abstain: "
            "of the topic-removed ones.",
            "",
            *markdown(header, rows),
            "",
            *markdown(m_header, m_rows),
            "",
            *summary_lines(result),
            "",
            "Recommended (the gate's own conjunction, chosen for both datasets): "
            + ", ".join(f"`abstain.{k} = {v:g}`" for k, v in rec.items())
            + ".",
            "",
        ]
        if result.get("notes"):
            lines += [f"- {n}" for n in result["notes"]] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir(), help="Shared data folder.")
    parser.add_argument("--dataset", action="append", choices=["pubmedqa", "medquad"], help="Default: both.")
    parser.add_argument("--limit", type=int, default=300, help="Training questions per dataset (0 = all).")
    parser.add_argument("--seed", type=int, default=SEED, help="Seed of the question sample.")
    parser.add_argument("--sample-files", type=int, default=1000, help="MedQuAD files, as in the retrieval eval.")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Torch CPU threads. The scores do not depend on it; on a busy 2-core machine one thread was ~10x "
        "faster than two (no oversubscription). 0: torch's default.",
    )
    parser.add_argument("--bootstrap", type=int, default=200, help="Resamples for the thresholds' intervals.")
    parser.add_argument("--reranker", help="Cross-encoder (folder or hub id): adds the rerank signal.")
    parser.add_argument(
        "--work", type=Path, default=Path(".cache/eval"), help="Evaluation indexes (from the repo root)."
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "abstention.json")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "results" / "abstention.md")
    args = parser.parse_args()
    if args.limit < 0:
        sys.exit("--limit must be >= 0")
    args.data, args.out, args.doc = args.data.resolve(), args.out.resolve(), args.doc.resolve()
    datasets = args.dataset or ["pubmedqa", "medquad"]
    needed = {"pubmedqa": args.data / "pubmedqa" / "ori_pqal.json", "medquad": args.data / "medquad"}
    missing = [str(needed[d]) for d in datasets if not needed[d].exists()]
    missing += [str(p) for p in (args.data / "ontology", args.data / "abbreviations") if not p.exists()]
    if missing:
        print(f"skipped: data not found: {', '.join(missing)} (set CLINQA_DATA or pass --data)")
        return
    os.chdir(REPO)  # as `clinqa eval retrieval` is run: corpus and vocabulary paths relative to the repo root
    logging.basicConfig(level=logging.ERROR)
    from app.config import Settings
    from app.pipeline.rerank import RerankerLoadError
    from app.pipeline.runner import Pipeline
    from indexer.build import build_index

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    settings = Settings()
    if args.reranker:
        settings = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"model": args.reranker})})
    started = time.perf_counter()
    samples: dict[str, Samples] = {}
    indexes: dict[str, dict] = {}
    notes: list[str] = []
    for name in datasets:
        t = time.perf_counter()
        collection, run_settings = prepare(name, args.data, args.work, settings, args.sample_files)
        why = reuse_note(run_settings)
        if why:
            err.print(f"{name}: {why}: building the index embeds every chunk (minutes on a CPU)", highlight=False)
        report = build_index(run_settings)
        err.print(f"{name}: index {report.version}, {report.chunks} chunks, {report.embedded} embedded this run")
        if report.embedded:
            notes.append(f"{name}: the index build embedded {report.embedded} chunks ({why or 'changed documents'})")
        try:
            pipeline = Pipeline.load(run_settings)
        except RerankerLoadError as exc:
            sys.exit(str(exc))
        samples[name] = collect(pipeline, collection, args.limit, args.seed)
        indexes[name] = {"version": report.version, "chunks": report.chunks, "embedded": report.embedded}
        x = samples[name]
        scorer = getattr(pipeline.reranker, "model", None)
        pairs = f", {scorer.scored} of {scorer.asked} cross-encoder pairs scored" if scorer else ""
        err.print(
            f"{name}: {x.questions} questions, {len(x.sufficient['answerable'])} with the gold document in the "
            f"evidence{pairs}, {time.perf_counter() - t:.0f} s",
            highlight=False,
        )
    notes += training_overlap(args.reranker, datasets)
    result = {
        "configuration": f"reranker {args.reranker}" if args.reranker else "fused, no reranker",
        "command": " ".join(["python bench/abstention.py", *sys.argv[1:]]),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "reranker": args.reranker,
        "limit": args.limit,
        "seed": args.seed,
        "sample_files": args.sample_files,
        "threads": args.threads,
        "settings": {
            "abstain": settings.abstain.model_dump(),
            "fuse": settings.fuse.model_dump(),
            "rerank_top_n": settings.rerank.top_n,
            "evidence_chunks": settings.generate.evidence_chunks,
        },
        "indexes": indexes,
        "notes": notes,
        "analysis": analyse(samples, settings, bool(args.reranker), args.bootstrap, args.seed),
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["recommended"] = recommended(result)
    print_tables(result)
    for line in summary_lines(result):
        out.print(line, highlight=False)
    out.print(
        "recommended: " + ", ".join(f"abstain.{k} = {v:g}" for k, v in result["recommended"].items()),
        highlight=False,
    )
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    results = {"benchmark": "abstention", "runs": {**previous.get("runs", {}), result["configuration"]: result}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_markdown(args.doc, results)
    err.print(f"wrote {args.out} and {args.doc} in {result['seconds']:.0f} s", highlight=False)


if __name__ == "__main__":
    main()

"""Retrieval evaluation: build (or reuse) an index for a collection, run each configuration, score it.

Configurations (all from the same index, side by side):
  bm25              BM25 on the question as asked
  bm25+expansion    BM25 on the rewritten question (abbreviations expanded, concept synonyms added)
  dense             FAISS over the sentence encoder
  concept           chunks mentioning the question's concepts (and their subtypes)
  hybrid            bm25 + dense fused as configured (no knowledge graph at all)
  hybrid (rrf)      the same two lists fused by the fuse.method not configured (rrf, or weighted)
  hybrid+concepts   fusion of bm25+expansion + dense on the rewritten question + concept
  hybrid+rerank     the cross-encoder over the top of the hybrid list, when one is configured
  hybrid+rerank-blend  the same scores, blended 50/50 by rank with the hybrid order (rerank.blend = 0.5)
Chunk hits are scored at document level: a document is ranked by its best chunk.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import CorpusSettings, IndexSettings, Settings
from app.eval.datasets import Collection
from app.eval.metrics import evaluate
from app.pipeline.fuse import make_fuser
from app.pipeline.rerank import blend_with_fused
from app.pipeline.runner import Pipeline
from app.pipeline.types import Query, RankedList, ScoredChunk
from indexer.build import BuildReport, build_index
from indexer.loaders.base import record_id

DEPTH = 100


@dataclass
class EvalResult:
    collection: str
    queries: int
    documents: int
    chunks: int
    index_version: str
    metrics: dict[str, dict[str, float]]
    seconds: dict[str, float]
    runs: dict[str, dict[str, list[str]]]
    notes: list[str]


def prepare_index(
    collection: Collection,
    work: Path,
    settings: Settings,
    vocabularies: list[Path],
    mappings: list[Path] | None = None,
    abbreviations: Path | None = None,
) -> Settings:
    """Write the collection as JSONL under `work` and build its index there (incremental: a rerun with the
    same documents embeds nothing)."""
    base = collection.name.split("-")[0]
    corpus = work / base / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in collection.documents)
    target = corpus / f"{base}.jsonl"
    if (
        not target.exists()
        or hashlib.sha256(target.read_bytes()).hexdigest() != hashlib.sha256(lines.encode()).hexdigest()
    ):
        target.write_text(lines, encoding="utf-8")
    return settings.model_copy(
        update={
            "corpus": CorpusSettings(
                paths=[corpus],
                vocabulary=vocabularies[0] if vocabularies else None,
                extra_vocabularies=list(vocabularies[1:]),
                mappings=list(mappings or []),
                abbreviations=abbreviations,
            ),
            "index": IndexSettings(root=work / base / "indexes"),
        }
    )


def _documents(hits: list[tuple[int, float]] | list[ScoredChunk], doc_of_row: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for hit in hits:
        row = hit.row if isinstance(hit, ScoredChunk) else hit[0]
        seen.setdefault(doc_of_row[row], None)
    return list(seen)


def run_configurations(
    pipeline: Pipeline, collection: Collection
) -> tuple[dict[str, dict[str, list[str]]], dict[str, float]]:
    index = pipeline.index
    doc_of_row = [record_id(c.doc_id) for c in index.chunks]
    r = pipeline.retriever
    runs: dict[str, dict[str, list[str]]] = {}
    seconds: dict[str, float] = {}
    # The fusion method not configured, side by side with the configured one ("hybrid").
    other = "weighted" if pipeline.settings.fuse.method == "rrf" else "rrf"
    other_fuser = make_fuser(pipeline.settings.fuse.model_copy(update={"method": other}))

    def record(name: str, qid: str, ranked: list[str], started: float) -> None:
        runs.setdefault(name, {})[qid] = ranked
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    for qid, text in collection.queries.items():
        t = time.perf_counter()
        plain = Query(original=text, rewritten=text, bm25_text=text)
        rich = pipeline.rewriter.run(text)
        seconds["rewrite"] = seconds.get("rewrite", 0.0) + time.perf_counter() - t

        t = time.perf_counter()
        bm25 = r.bm25.run(plain, DEPTH)
        record("bm25", qid, _documents(list(bm25.hits), doc_of_row), t)
        t = time.perf_counter()
        bm25x = r.bm25.run(rich, DEPTH)
        record("bm25+expansion", qid, _documents(list(bm25x.hits), doc_of_row), t)
        t = time.perf_counter()
        dense = r.dense.run(plain, DEPTH)
        record("dense", qid, _documents(list(dense.hits), doc_of_row), t)
        t = time.perf_counter()
        concept = r.concept.run(rich, DEPTH)
        record("concept", qid, _documents(list(concept.hits), doc_of_row), t)
        t = time.perf_counter()
        hybrid = pipeline.fuser.run([bm25, dense], index.chunks, top_k=DEPTH)
        record("hybrid", qid, _documents(hybrid, doc_of_row), t)
        t = time.perf_counter()
        other_fused = other_fuser.run([bm25, dense], index.chunks, top_k=DEPTH)
        record(f"hybrid ({other_fuser.settings.method})", qid, _documents(other_fused, doc_of_row), t)
        t = time.perf_counter()
        dense_rich = dense if rich.rewritten == plain.rewritten else r.dense.run(rich, DEPTH)
        lists: list[RankedList] = [bm25x, dense_rich, concept]
        fused = pipeline.fuser.run(lists, index.chunks, top_k=DEPTH)
        record("hybrid+concepts", qid, _documents(fused, doc_of_row), t)
        if pipeline.reranker is not None:
            t = time.perf_counter()
            reranked = pipeline.reranker.run(plain, hybrid, pipeline.index_version, pipeline.term_stats.idf)
            record("hybrid+rerank", qid, _documents(reranked, doc_of_row), t)
            if pipeline.reranker.settings.blend == 1.0:  # also the blended row, from the same scores
                t = time.perf_counter()
                top_n = pipeline.reranker.settings.top_n
                blended = blend_with_fused(reranked[:top_n], 0.5) + reranked[top_n:]
                record("hybrid+rerank-blend", qid, _documents(blended, doc_of_row), t)
    return runs, seconds


def evaluate_collection(collection: Collection, settings: Settings) -> tuple[EvalResult, BuildReport]:
    report = build_index(settings)
    pipeline = Pipeline.load(settings)
    runs, seconds = run_configurations(pipeline, collection)
    metrics = {name: evaluate(run, collection.qrels) for name, run in runs.items()}
    n = max(1, len(collection.queries))
    result = EvalResult(
        collection=collection.name,
        queries=len(collection.queries),
        documents=len(collection.documents),
        chunks=len(pipeline.index.chunks),
        index_version=pipeline.index_version,
        metrics=metrics,
        seconds={k: round(v * 1000 / n, 2) for k, v in seconds.items()},  # ms per query
        runs=runs,
        notes=collection.notes,
    )
    return result, report


def markdown_table(result: EvalResult) -> str:
    cols = ["recall@1", "recall@5", "recall@10", "recall@50", "mrr@10", "ndcg@10"]
    lines = [
        f"### {result.collection}: {result.queries} queries, {result.documents} documents, {result.chunks} chunks "
        f"(index {result.index_version})",
        "",
        "| configuration | " + " | ".join(cols) + " | ms/query |",
        "|---|" + "---:|" * (len(cols) + 1),
    ]
    for name, m in result.metrics.items():
        values = " | ".join(f"{m.get(c, 0.0):.4f}" for c in cols)
        lines.append(f"| {name} | {values} | {result.seconds.get(name, 0.0):.1f} |")
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def bar_chart(result: EvalResult, path: Path) -> Path:
    """nDCG@10 and recall@10 per configuration, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 3.6), dpi=120)
    width = 0.38
    for i, (metric, colour) in enumerate((("ndcg@10", "#2b6cb0"), ("recall@10", "#9ac1e8"))):
        values = [result.metrics[n].get(metric, 0.0) for n in names]
        xs = [x + (i - 0.5) * width for x in range(len(names))]
        bars = ax.bar(xs, values, width, label=metric, color=colour)
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=6, padding=1)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_title(f"{result.collection}: {result.queries} queries, {result.documents} documents", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


SUMMARY_HEADER = """# Retrieval evaluation

Each section below was written by the command printed under its table, with
`VOCAB="--vocabulary corpus/demo/vocabulary.yaml --vocabulary $CLINQA_DATA/ontology/doid-2018-07-05.json.gz
--mappings $CLINQA_DATA/ontology/mondo_exactmatch_doid.sssom.tsv
--mappings $CLINQA_DATA/ontology/mondo_exactmatch_umls.sssom.tsv --abbreviations $CLINQA_DATA/abbreviations"`:

    clinqa eval retrieval --dataset pubmedqa $VOCAB --reranker models/reranker-pubmedqa
    clinqa eval retrieval --dataset medquad --sample-files 1000 $VOCAB --reranker models/reranker-medquad

The rerankers were trained on the training splits only:

    clinqa train reranker --dataset pubmedqa --epochs 2 --learning-rate 5e-5 --out models/reranker-pubmedqa
    clinqa train reranker --dataset medquad --sample-files 1000 --max-groups 1000 --learning-rate 5e-5 \\
        --out models/reranker-medquad
    clinqa train reranker --dataset pubmedqa --dataset medquad --sample-files 1000 --max-groups 1000 \\
        --learning-rate 5e-5 --out models/reranker-pooled     # results in reranker-pooled/

Test splits only (PubMedQA: the 500 ids of test_ground_truth.json; MedQuAD: files with sha1(id) % 5 == 0);
fusion weights were chosen on the training splits (fusion-tuning.md). ms/query is the time of that row's
own step (the blend row reuses the rerank row's cross-encoder scores).

"""


def write_summary(out: Path) -> Path:
    """`retrieval.md`: every collection's table found in `out`, under one header."""
    parts = [SUMMARY_HEADER]
    for md in sorted(out.glob("retrieval-*.md")):
        png = md.with_suffix(".png")
        parts.append(md.read_text(encoding="utf-8"))
        if png.exists():
            parts.append(f"\n![{md.stem}]({png.name})\n")
        parts.append("\n")
    path = out / "retrieval.md"
    path.write_text("".join(parts).rstrip() + "\n", encoding="utf-8")
    return path


def write_outputs(result: EvalResult, out: Path, command: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"retrieval-{result.collection}.md"
    table = markdown_table(result)
    if command:
        table += f"\nCommand: `{command}`\n"
    md.write_text(table, encoding="utf-8")
    js = out / f"retrieval-{result.collection}.json"
    body = {k: v for k, v in result.__dict__.items() if k != "runs"}
    js.write_text(json.dumps(body, indent=2), encoding="utf-8")
    written = [md, js]
    for name, run in result.runs.items():
        path = out / f"run-{result.collection}-{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}.trec"
        with path.open("w", encoding="utf-8") as fh:
            for qid, docs in run.items():
                for rank, doc in enumerate(docs, start=1):
                    fh.write(f"{qid} Q0 {doc} {rank} {1.0 / rank:.6f} clinqa-{name}\n")
        written.append(path)
    written.insert(2, bar_chart(result, out / f"retrieval-{result.collection}.png"))
    written.insert(3, write_summary(out))
    return written

"""`POST /v1/ask` latency and reranked nDCG@10 per reranking configuration, side by side in one run.

    python bench/ask_latency.py --index-root .cache/pdq-index --reranker models/reranker-pooled

Latency: each configuration starts its own `clinqa serve` on the PDQ index (bench/search_latency.py's
`serve`), sends 5 warm-up questions, then the same MedQuAD CancerGov questions one at a time, timed from the
client; the servers run one after another (not at once, so they do not share the 2 cores). Per-stage medians
come from the responses' `timings_ms`. Quality: nDCG@10 of the reranked list on the MedQuAD and PubMedQA test
splits, computed by the evaluation harness (app/eval/retrieval.py `run_configurations`, the "hybrid+rerank" row)
with the same settings, on a fixed seeded subset of each split's questions (`--eval-queries`) against the
indexes `clinqa eval retrieval` keeps under .cache/eval. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_latency import REPO, data_dir, percentile, post, questions, serve

REFERENCE = "fp32 torch top-20 full chunks"


def configurations(reranker: str) -> list[tuple[str, dict[str, str]]]:
    model = {"CLINQA_RERANK__MODEL": reranker}
    return [
        ("no rerank (torch encoder)", {"CLINQA_PRESET": "accurate"}),
        ("no rerank (onnx encoder)", {"CLINQA_PRESET": "fast"}),
        (REFERENCE, {"CLINQA_PRESET": "accurate", **model}),
        (
            "fp32 torch top-10 windows 128",
            {"CLINQA_PRESET": "accurate", "CLINQA_RERANK__TOP_N": "10", "CLINQA_RERANK__WINDOW_TOKENS": "128", **model},
        ),
        ("fast: int8 onnx top-10 windows 128 + onnx encoder", {"CLINQA_PRESET": "fast", **model}),
        ("int8 onnx top-5 windows 128 + onnx encoder", {"CLINQA_PRESET": "fast", "CLINQA_RERANK__TOP_N": "5", **model}),
    ]


def latency(env: dict[str, str], base_env: dict[str, str], qs: list[str]) -> dict:
    with serve({**base_env, **env}) as url:
        for q in qs[:5]:
            post(f"{url}/v1/ask", {"question": q})
        client_ms: list[float] = []
        stages: dict[str, list[float]] = {}
        for q in qs:
            t = time.perf_counter()
            body = post(f"{url}/v1/ask", {"question": q})
            client_ms.append((time.perf_counter() - t) * 1000)
            for stage, ms in body.get("timings_ms", {}).items():
                stages.setdefault(stage, []).append(ms)
    return {
        "p50_ms": round(statistics.median(client_ms), 1),
        "p95_ms": round(percentile(client_ms, 95), 1),
        "stage_p50_ms": {k: round(statistics.median(v), 1) for k, v in stages.items()},
    }


def quality(env: dict[str, str], collections: dict, work: Path) -> dict[str, float | None]:
    """nDCG@10 of the reranked list (or of the hybrid list without a reranker), through the evaluation harness."""
    from app.config import IndexSettings, Settings
    from app.eval.metrics import evaluate
    from app.eval.retrieval import run_configurations
    from app.pipeline.runner import Pipeline

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CLINQA_")}
    os.environ.update(env)
    try:
        out: dict[str, float | None] = {}
        for name, collection in collections.items():
            base = name.split("-")[0]
            settings = Settings().model_copy(update={"index": IndexSettings(root=work / base / "indexes")})
            pipeline = Pipeline.load(settings)
            runs, _ = run_configurations(pipeline, collection)
            row = "hybrid+rerank" if "hybrid+rerank" in runs else "hybrid"
            out[name] = round(evaluate(runs[row], collection.qrels).get("ndcg@10", 0.0), 4)
        return out
    finally:
        for k in [k for k in os.environ if k.startswith("CLINQA_")]:
            del os.environ[k]
        os.environ.update(saved)


def load_collections(n: int, seed: int, sample_files: int) -> dict:
    from app.eval.datasets import medquad, pubmedqa

    out = {}
    for collection in (medquad(data_dir(), "test", sample_files), pubmedqa(data_dir(), "test")):
        ids = sorted(collection.queries)
        chosen = sorted(random.Random(seed).sample(ids, min(n, len(ids))))
        out[collection.name] = replace(
            collection,
            queries={q: collection.queries[q] for q in chosen},
            qrels={q: collection.qrels[q] for q in chosen if q in collection.qrels},
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-root", type=Path, required=True, help="PDQ index root with a `current` version.")
    parser.add_argument("--reranker", required=True, help="Cross-encoder folder (e.g. models/reranker-pooled).")
    parser.add_argument("--queries", type=int, default=200, help="Questions per latency configuration.")
    parser.add_argument(
        "--eval-queries", type=int, default=100, help="Seeded subset per test split (0: none; over the size: all)."
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--sample-files", type=int, default=1000, help="MedQuAD files, as in retrieval.md.")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "eval")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ask_latency.json")
    args = parser.parse_args()
    qs = questions(args.queries)
    if len(qs) < args.queries:
        sys.exit(f"found {len(qs)} questions under {data_dir() / 'medquad'}, wanted {args.queries} (set CLINQA_DATA)")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    base_env |= {"CLINQA_INDEX__ROOT": str(args.index_root.resolve()), "CLINQA_LOG__LEVEL": "WARNING"}
    collections = load_collections(args.eval_queries, args.seed, args.sample_files) if args.eval_queries else {}
    load_before = os.getloadavg()
    results = []
    for name, env in configurations(args.reranker):
        print(f"{name}: {len(qs)} questions ...", file=sys.stderr, flush=True)
        row = {"name": name, "env": env, **latency(env, base_env, qs)}
        row["ndcg@10"] = quality(env, collections, args.work) if collections else {}
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    ref = next(r for r in results if r["name"] == REFERENCE)
    for r in results:
        r["ndcg_delta_points"] = {k: round((v - ref["ndcg@10"][k]) * 100, 2) for k, v in r["ndcg@10"].items()}
    machine = f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"
    names = list(collections)
    print(
        f"\n/v1/ask, {len(qs)} questions per configuration, on {machine}; load average before "
        f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}\n"
    )
    head = "| configuration | p50 ms | p95 ms | rerank p50 | generate p50 | retrieve p50 | "
    head += " | ".join(f"nDCG@10 {n} (Δ)" for n in names) + " | load |"
    print(head)
    print("|---|" + "---:|" * (5 + len(names) + 1))
    for r in results:
        s = r["stage_p50_ms"]
        q = " | ".join(f"{r['ndcg@10'][n]:.4f} ({r['ndcg_delta_points'][n]:+.2f})" for n in names)
        print(
            f"| {r['name']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {s.get('rerank', 0):.0f} | "
            f"{s.get('generate', 0):.0f} | {s.get('retrieve', 0):.0f} | {q} | {r['load_avg_1m']:.1f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "python": platform.python_version(),
                "index_root": str(args.index_root),
                "reranker": args.reranker,
                "queries": len(qs),
                "eval_queries": args.eval_queries,
                "seed": args.seed,
                "load_avg_before": [round(x, 2) for x in load_before],
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

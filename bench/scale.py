"""Synthetic scale-up of the PDQ index to 100k and 1M chunks: build cost, size, memory, query latency.

    python bench/scale.py                                  # 100k and 1M chunks (long: about an hour on 2 cores)
    python bench/scale.py --quick                          # 50k chunks, 30 queries, for development
    python bench/scale.py --sizes 100000 --faiss flat,hnsw --skip-rank-bm25

The seed is a built PDQ index (36,021 real chunks, MiniLM vectors; `--seed-index`). Copy 0 of every seed
chunk is the chunk itself; each further copy is perturbed (a few words dropped, a few replaced with words
of other chunks, one adjacent pair swapped) and gets a new chunk id and document id, so BM25 postings and
IDF stay realistic. Its vector is the seed vector plus Gaussian noise, re-normalised (cosine to the seed
about 0.9). Concept mentions (linked once on the seed with `--vocabulary`) are copied with the chunk.
Versions are written with `indexer.store.write_version` and read back by `Pipeline.load`, as the server does.

Every phase runs in its own subprocess, so peak RSS is per phase:
- build: perturb, BM25 (bm25s), FAISS (the type `auto` picks: flat below 200k, HNSW above), graph, write
- faiss: flat vs HNSW vs IVF-PQ over the stored vectors: build time, size, query p50/p95, recall@10 vs flat
- serve: `Pipeline.load` (no reranker), then BM25 / dense / concept / fused-search latency, bm25s backends
- rank_bm25: rank-bm25 BM25Okapi over the same tokens, a few queries (only up to `--rank-bm25-max` chunks)
The real 36k index is measured too (serve and faiss phases) as the first point of the curve.
Work files go to .cache/scale/ (gitignored). Prints tables and writes bench/results/scale.json and
docs/results/scale-latency.png.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # phases run as `python bench/scale.py --phase ...`
sys.path.insert(0, str(REPO / "bench"))
from search_latency import data_dir, percentile, questions  # noqa: E402  (the same questions as the other benches)

WORK = REPO / ".cache" / "scale"
SIGMA = 0.025  # noise per dimension: |noise| ~ 0.49 for 384 dimensions, cosine to the seed vector ~0.9
RANK_BM25_QUERIES = 10


# --- shared helpers --------------------------------------------------------------------------------


def stats_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "mean_ms": round(statistics.fmean(values), 3),
        "n": len(values),
    }


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[list[float], Any]:
    """Milliseconds of each call, and the last result."""
    out, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - t) * 1000)
    return out, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dir_bytes(path: Path) -> dict[str, int]:
    """Bytes on disk per top-level entry of an index version (folders summed)."""
    out: dict[str, int] = {}
    for p in sorted(path.iterdir()):
        out[p.name] = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return out


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("bm25s", "faiss-cpu", "numpy", "numba", "rank-bm25", "sentence-transformers", "torch"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> str:
    return f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def faiss_settings(args: argparse.Namespace, kind: str = "auto", n: int = 0):
    from app.config import FaissSettings

    nlist = args.ivf_nlist or min(int(4 * n**0.5), 1024) if n else None
    return FaissSettings(
        index_type=kind,
        hnsw_m=args.hnsw_m,
        hnsw_ef_construction=args.hnsw_ef_construction,
        hnsw_ef_search=args.hnsw_ef_search,
        ivf_nlist=nlist,
        ivf_nprobe=args.ivf_nprobe,
    )


# --- phase: build ----------------------------------------------------------------------------------


def seed_mentions(seed: Path, vocabulary: Path | None, texts: list[str]) -> tuple[Any, list[list[str]], float]:
    """Concept mentions of the seed chunks, linked once with the vocabulary and cached under .cache/scale."""
    from knowledge.graph import KnowledgeGraph
    from knowledge.linker import ConceptLinker
    from knowledge.schema import Vocabulary
    from knowledge.sources import load_knowledge

    if vocabulary is None:
        return Vocabulary(), [[] for _ in texts], 0.0
    vocab = load_knowledge([vocabulary], [], None)
    key = hashlib.sha256(f"{seed.resolve()}|{vocabulary.resolve()}|{len(texts)}".encode()).hexdigest()[:12]
    cache = WORK / f"seed-mentions-{key}.json"
    if cache.is_file():
        return vocab, json.loads(cache.read_text()), 0.0
    t = time.perf_counter()
    linker = ConceptLinker(vocab.concepts, graph=KnowledgeGraph.build(vocab, []))
    mentions = [[m.concept_id for m in linker.link(text)] for text in texts]
    seconds = time.perf_counter() - t
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(mentions))
    return vocab, mentions, seconds


def phase_build(args: argparse.Namespace) -> dict:
    import bm25s
    import numpy as np
    from bm25s.tokenization import Tokenized

    from indexer.analysis import Analyzer
    from indexer.build import index_id
    from indexer.dense import build_faiss
    from indexer.store import (
        Chunk,
        DocumentInfo,
        activate,
        new_version_name,
        read_index,
        resolve_version,
        write_version,
    )
    from knowledge.graph import KnowledgeGraph

    n = args.size
    root = WORK / size_label(n) / "index"
    shutil.rmtree(root, ignore_errors=True)
    timings: dict[str, float] = {}
    t0 = t = time.perf_counter()
    seed = read_index(resolve_version(args.seed_index.resolve()))
    seed_embeddings = np.load(seed.path / "embeddings.npy")
    s = len(seed.chunks)
    timings["read_seed"] = time.perf_counter() - t

    vocab, mentions_seed, link_s = seed_mentions(seed.path, args.vocabulary, [c.search_text for c in seed.chunks])
    timings["link_seed"] = link_s

    # Tokens are analysed once per distinct word: the analyzer's tokens never span whitespace, so a text's
    # tokens are its words' tokens in order (checked below on a sample against `Analyzer.tokens`).
    t = time.perf_counter()
    analyzer = Analyzer()
    vocab_ids: dict[str, int] = {}
    word_ids: dict[str, tuple[int, ...]] = {}

    def ids_of(word: str) -> tuple[int, ...]:
        got = word_ids.get(word)
        if got is None:
            got = tuple(vocab_ids.setdefault(tok, len(vocab_ids)) for tok in analyzer.tokens(word))
            word_ids[word] = got
        return got

    seed_words = [c.text.split() for c in seed.chunks]
    crumb_ids = [[i for w in c.breadcrumb.split() for i in ids_of(w)] for c in seed.chunks]
    pool = [w for words in seed_words for w in words]
    rng = random.Random(args.seed)
    chunks: list[Chunk] = []
    token_ids: list[list[int]] = []
    rows_seed = np.empty(n, dtype=np.int64)
    for row in range(n):
        copy, si = divmod(row, s)
        src = seed.chunks[si]
        rows_seed[row] = si
        words = seed_words[si]
        if copy:
            words = list(words)
            for _ in range(rng.randint(1, 3)):
                if len(words) > 8:
                    del words[rng.randrange(len(words))]
            for _ in range(rng.randint(2, 5)):
                if words:
                    words[rng.randrange(len(words))] = pool[rng.randrange(len(pool))]
            if len(words) > 2:
                j = rng.randrange(len(words) - 1)
                words[j], words[j + 1] = words[j + 1], words[j]
        text = " ".join(words) if copy else src.text
        doc_id = f"{src.doc_id}~{copy}" if copy else src.doc_id
        chunk_id = hashlib.blake2b(f"{doc_id}|{src.ordinal}|{copy}".encode(), digest_size=10).hexdigest()
        chunks.append(
            Chunk.model_construct(
                id=chunk_id,
                doc_id=doc_id,
                ordinal=src.ordinal,
                section_path=src.section_path,
                breadcrumb=src.breadcrumb,
                text=text,
                start=src.start,
                end=src.start + len(text) if copy else src.end,
                page=src.page,
                n_tokens=src.n_tokens,
                anchors=() if copy else src.anchors,
            )
        )
        token_ids.append(crumb_ids[si] + [i for w in text.split() for i in ids_of(w)])
    timings["perturb"] = time.perf_counter() - t
    inverse = {i: tok for tok, i in vocab_ids.items()}
    for row in random.Random(1).sample(range(n), min(300, n)):
        expected = analyzer.tokens(chunks[row].search_text)
        if [inverse[i] for i in token_ids[row]] != expected:
            raise RuntimeError(f"token shortcut differs from Analyzer.tokens on row {row}")

    t = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(Tokenized(ids=token_ids, vocab=vocab_ids), show_progress=False)
    del token_ids
    word_ids.clear()
    gc.collect()
    timings["bm25"] = time.perf_counter() - t

    t = time.perf_counter()
    vectors = np.empty((n, seed_embeddings.shape[1]), dtype=np.float32)
    noise = np.random.default_rng(args.seed)
    block = 65536
    for start in range(0, n, block):
        idx = rows_seed[start : start + block]
        v = seed_embeddings[idx] + noise.standard_normal((len(idx), vectors.shape[1]), dtype=np.float32) * SIGMA
        first = np.arange(start, start + len(idx)) < s  # copy 0 keeps the real vector
        v[first] = seed_embeddings[idx[first]]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        vectors[start : start + len(idx)] = v
    timings["vectors"] = time.perf_counter() - t

    t = time.perf_counter()
    fs = faiss_settings(args, "auto", n)
    dense, faiss_info = build_faiss(vectors, fs)
    timings["faiss"] = time.perf_counter() - t

    t = time.perf_counter()
    graph = KnowledgeGraph.build(vocab, [mentions_seed[i] for i in rows_seed.tolist()])
    timings["graph"] = time.perf_counter() - t

    counts: dict[str, int] = {}
    for c in chunks:
        counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
    documents = []
    for doc_id, k in counts.items():
        base = seed.documents[doc_id.split("~")[0]]
        documents.append(DocumentInfo(**{**base.model_dump(), "doc_id": doc_id, "n_chunks": k}))

    from app.config import Settings

    iid = index_id(Settings(faiss=fs), analyzer)
    manifest = seed.manifest.model_copy(
        update={
            "version": new_version_name(iid),
            "index_id": iid,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_settings": {
                **seed.manifest.build_settings,
                "faiss": fs.model_dump(mode="json"),
                "synthetic": {"seed_version": seed.version, "chunks": n, "sigma": SIGMA, "seed": args.seed},
            },
            "faiss": faiss_info,
            "counts": {
                **seed.manifest.counts,
                "documents": len(documents),
                "chunks": n,
                "concepts": graph.n_concepts,
                "relations": graph.n_relations,
            },
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "documents": documents,
            "skipped": [],
            "over_token_limit": [],
        }
    )
    t = time.perf_counter()
    path = write_version(root, manifest, chunks, bm25, dense, vectors, graph)
    activate(root, manifest.version)
    timings["write"] = time.perf_counter() - t
    return {
        "chunks": n,
        "documents": len(documents),
        "vocabulary_terms": len(vocab_ids),
        "postings": int(bm25.scores["data"].size),
        "concept_postings": sum(len(graph.postings(c)) for c in graph.posting_ids()),
        "faiss": faiss_info,
        "seconds": round(time.perf_counter() - t0, 2),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "bytes": dir_bytes(path),
        "path": str(path),
    }


# --- phase: faiss ----------------------------------------------------------------------------------


def query_vectors(qs: list[str]):
    """The questions embedded with the index's encoder, cached (all sizes share them)."""
    import numpy as np

    key = hashlib.sha256("\n".join(qs).encode()).hexdigest()[:12]
    cache = WORK / f"queries-{key}.npy"
    if cache.is_file():
        return np.load(cache)
    from app.config import EncoderSettings
    from indexer.dense import embed, load_encoder

    vecs = embed(load_encoder(EncoderSettings()), qs, 32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    return vecs


def phase_faiss(args: argparse.Namespace) -> dict:
    import faiss
    import numpy as np

    from indexer.dense import build_faiss, configure_search
    from indexer.store import read_embeddings, read_manifest, resolve_version

    path = resolve_version(args.index_root)
    manifest = read_manifest(path)
    served = manifest.faiss["type"]
    xb = np.ascontiguousarray(read_embeddings(path))
    n = len(xb)
    xq = query_vectors(questions(args.queries))
    k = 10
    out: dict[str, Any] = {"chunks": n, "served": served, "threads": faiss.omp_get_max_threads(), "methods": {}}
    truth = None
    build_threads = faiss.omp_get_max_threads()
    kinds = ["flat"] + [m for m in args.faiss if m != "flat"]  # flat first: it is the ground truth
    for kind in kinds:
        gc.collect()
        faiss.omp_set_num_threads(build_threads)
        fs = faiss_settings(args, kind, n)
        if kind == served:
            t = time.perf_counter()
            index = faiss.read_index(str(path / "dense.faiss"))
            info = {**manifest.faiss, "loaded_s": round(time.perf_counter() - t, 2)}
            build_s = manifest.timings_s.get("faiss")
            if kind == "flat" and build_s is None:
                build_s = 0.0
        else:
            t = time.perf_counter()
            index, info = build_faiss(xb, fs)
            build_s = time.perf_counter() - t
        configure_search(index, fs)
        tmp = WORK / f"tmp-{os.getpid()}.faiss"
        faiss.write_index(index, str(tmp))
        size = tmp.stat().st_size
        tmp.unlink()
        if args.threads:
            faiss.omp_set_num_threads(args.threads)  # queries as the serving phase runs them
        for q in xq[:5]:
            index.search(q[None, :], k)
        times: list[float] = []
        found = np.empty((len(xq), k), dtype=np.int64)
        for i, q in enumerate(xq):
            t = time.perf_counter()
            _, rows = index.search(q[None, :], k)
            times.append((time.perf_counter() - t) * 1000)
            found[i] = rows[0]
        if truth is None:
            truth = found
        recall = float(np.mean([len(set(found[i]) & set(truth[i])) / k for i in range(len(xq))]))
        out["methods"][kind] = {
            **stats_ms(times),
            "build_s": None if build_s is None else round(build_s, 2),
            "bytes": size,
            f"recall@{k}": round(recall, 4),
            "params": {key: v for key, v in info.items() if key not in ("metric", "normalized")},
            "search_params": {"ef_search": fs.hnsw_ef_search}
            if kind == "hnsw"
            else {"nprobe": fs.ivf_nprobe}
            if kind == "ivfpq"
            else {},
        }
        if kind not in args.faiss:
            out["methods"].pop(kind)  # flat only served as ground truth
        del index
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


# --- phase: serve ----------------------------------------------------------------------------------


def phase_serve(args: argparse.Namespace) -> dict:
    import numpy as np

    from app.config import Settings
    from app.pipeline.retrieve import _top
    from app.pipeline.runner import Pipeline
    from indexer.store import read_manifest, resolve_version

    # Warm-up questions are not measured: the serving encoder caches embeddings of texts it has seen.
    qs_all = questions(args.queries + 5)
    qs, warm = qs_all[: args.queries], qs_all[args.queries :]
    rss_start = rss_mb()
    n_hint = read_manifest(resolve_version(args.index_root)).counts["chunks"]
    settings = Settings(
        index={"root": args.index_root},
        faiss=faiss_settings(args, "auto", n_hint),
        rerank={"model": None},
    )
    t = time.perf_counter()
    pipeline = Pipeline.load(settings)
    load_s = time.perf_counter() - t
    rss_loaded = rss_mb()
    index = pipeline.index
    n = len(index.chunks)
    bm25 = index.bm25

    for q in warm:
        pipeline.search(q)
    raw_encoder = getattr(pipeline.encoder, "encoder", pipeline.encoder)  # below the embedding cache
    queries = [pipeline.rewriter.run(q) for q in qs]
    k_bm25, k_dense, k_concept = (
        settings.retrieve.bm25_top_k,
        settings.retrieve.dense_top_k,
        settings.retrieve.concept_top_k,
    )
    r = pipeline.retriever
    fused: list[float] = []
    stage: dict[str, list[float]] = {"rewrite": [], "retrieve": [], "fuse": []}
    channels: dict[str, list[float]] = {"bm25": [], "encode": [], "faiss": [], "concept": []}
    for q, query in zip(qs, queries, strict=True):
        outcome = pipeline.search(q)
        fused.append(outcome.timings_ms["total"])
        for name in stage:
            stage[name].append(outcome.timings_ms.get(name, 0.0))
        channels["bm25"] += timed(lambda query=query: r.bm25.run(query, k_bm25))[0]
        ms, vec = timed(
            lambda query=query: raw_encoder.encode(
                [query.rewritten], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        )
        channels["encode"] += ms
        channels["faiss"] += timed(lambda vec=vec: index.dense.search(vec, k_dense))[0]
        channels["concept"] += timed(lambda query=query: r.concept.run(query, k_concept))[0]

    rss_queries, peak_serving = rss_mb(), peak_rss_mb()  # before the alternatives below load more

    # bm25s scoring paths over the same query tokens: what clinqa calls (get_scores), and the alternatives.
    token_lists = [[t for t in pipeline.analyzer.tokens(q.bm25_text) if t in bm25.vocab_dict] for q in queries]
    token_lists = [tl for tl in token_lists if tl]
    ids = [np.asarray(bm25.get_tokens_ids(tl), dtype=np.int32) for tl in token_lists]
    data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]

    def bincount(qids: np.ndarray) -> np.ndarray:
        sl = [slice(indptr[i], indptr[i + 1]) for i in qids]
        return np.bincount(
            np.concatenate([indices[x] for x in sl]), weights=np.concatenate([data[x] for x in sl]), minlength=n
        ).astype(np.float32)

    def top_nonzero(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        nz = np.flatnonzero(scores)
        return [(int(nz[i]), v) for i, v in _top(scores[nz], k)]

    bm25_paths: dict[str, list[float]] = {"get_scores (numpy, clinqa)": [], "bincount": []}
    scores_sample = []
    for tl, qids in zip(token_lists, ids, strict=True):
        ms, scores = timed(lambda tl=tl: bm25.get_scores(tl))
        bm25_paths["get_scores (numpy, clinqa)"] += ms
        scores_sample.append(scores)
        ms, alt = timed(lambda qids=qids: bincount(qids))
        bm25_paths["bincount"] += ms
        if not np.allclose(alt, scores, rtol=1e-4, atol=1e-4):
            raise RuntimeError("bincount scores differ from bm25s get_scores")
    topk = {"_top (argpartition, all rows)": [], "_top over nonzero rows": []}
    for scores in scores_sample:
        topk["_top (argpartition, all rows)"] += timed(lambda scores=scores: _top(scores, k_bm25))[0]
        topk["_top over nonzero rows"] += timed(lambda scores=scores: top_nonzero(scores, k_bm25))[0]
    numba_info = {"installed": importlib.util.find_spec("numba") is not None}
    if numba_info["installed"]:
        bm25.activate_numba_scorer()
        bm25.get_scores(token_lists[0])  # JIT compile
        bm25_paths["get_scores (numba scorer)"] = []
        for tl in token_lists:
            bm25_paths["get_scores (numba scorer)"] += timed(lambda tl=tl: bm25.get_scores(tl))[0]
        import bm25s

        nb = bm25s.BM25.load(str(index.path / "bm25"), mmap=True, show_progress=False)
        nb.backend = "numba"
        nb.activate_numba_scorer()
        nb.retrieve([token_lists[0]], k=k_bm25, show_progress=False, n_threads=1)
        bm25_paths["retrieve top-k (numba backend)"] = []
        for tl in token_lists:
            bm25_paths["retrieve top-k (numba backend)"] += timed(
                lambda tl=tl: nb.retrieve([tl], k=k_bm25, show_progress=False, n_threads=1)
            )[0]
    return {
        "chunks": n,
        "index_version": index.version,
        "faiss": index.manifest.faiss,
        "queries": len(qs),
        "load_s": round(load_s, 2),
        "rss_start_mb": round(rss_start, 1),
        "rss_after_load_mb": round(rss_loaded, 1),
        "rss_after_queries_mb": round(rss_queries, 1),
        "peak_rss_mb": round(peak_serving, 1),
        "peak_rss_with_alternatives_mb": round(peak_rss_mb(), 1),
        "fused_search": stats_ms(fused),
        "stages": {k: stats_ms(v) for k, v in stage.items()},
        "channels": {k: stats_ms(v) for k, v in channels.items()},
        "bm25_paths": {k: stats_ms(v) for k, v in bm25_paths.items()},
        "top_k_paths": {k: stats_ms(v) for k, v in topk.items()},
        "bm25_backend": bm25.backend,
        "numba": numba_info,
        "concept_postings_max": max((len(index.graph.postings(c)) for c in index.graph.posting_ids()), default=0),
    }


# --- phase: rank-bm25 ------------------------------------------------------------------------------


def phase_rank_bm25(args: argparse.Namespace) -> dict:
    import numpy as np
    from rank_bm25 import BM25Okapi

    from app.config import Settings
    from app.pipeline.rewrite import QueryRewriter
    from indexer.analysis import Analyzer
    from indexer.store import read_graph, resolve_version
    from knowledge.linker import ConceptLinker

    path = resolve_version(args.index_root)
    analyzer = Analyzer()
    t = time.perf_counter()
    with (path / "chunks.jsonl").open(encoding="utf-8") as fh:
        corpus = [analyzer.tokens(f"{c['breadcrumb']}\n{c['text']}") for c in map(json.loads, fh)]
    tokenize_s = time.perf_counter() - t
    t = time.perf_counter()
    model = BM25Okapi(corpus)
    build_s = time.perf_counter() - t
    rss_built = rss_mb()
    graph = read_graph(path)
    rewriter = QueryRewriter(Settings().rewrite, ConceptLinker(graph.concepts()), graph)
    token_lists = [analyzer.tokens(rewriter.run(q).bm25_text) for q in questions(RANK_BM25_QUERIES)]
    times = []
    for tokens in token_lists:
        ms, scores = timed(lambda tokens=tokens: model.get_scores(tokens))
        times.append(ms[0])
        np.argpartition(-scores, 49)[:50]
    return {
        "chunks": len(corpus),
        "tokenize_s": round(tokenize_s, 2),
        "build_s": round(build_s, 2),
        "rss_after_build_mb": round(rss_built, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "get_scores": stats_ms(times),
    }


PHASES: dict[str, Callable[[argparse.Namespace], dict]] = {
    "build": phase_build,
    "faiss": phase_faiss,
    "serve": phase_serve,
    "rank_bm25": phase_rank_bm25,
}


# --- driver ----------------------------------------------------------------------------------------


def run_phase(name: str, args: argparse.Namespace, extra: list[str]) -> dict:
    """Run one phase in a fresh interpreter; its JSON comes back through a file."""
    out = WORK / f"phase-{name}-{os.getpid()}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--phase-out", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")} | {"CLINQA_LOG__LEVEL": "WARNING"}
    if "CLINQA_DATA" in os.environ:
        env["CLINQA_DATA"] = os.environ["CLINQA_DATA"]
    if args.threads and name == "serve":
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    print(f"  {name} ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"phase {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    result["wall_s"] = round(time.perf_counter() - t, 1)
    print(f"  {name} done in {result['wall_s']} s, peak RSS {result.get('peak_rss_mb')} MB", file=sys.stderr)
    return result


def common_flags(args: argparse.Namespace) -> list[str]:
    flags = [
        "--queries",
        str(args.queries),
        "--faiss",
        ",".join(args.faiss),
        "--hnsw-m",
        str(args.hnsw_m),
        "--hnsw-ef-construction",
        str(args.hnsw_ef_construction),
        "--hnsw-ef-search",
        str(args.hnsw_ef_search),
        "--ivf-nprobe",
        str(args.ivf_nprobe),
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--seed-index",
        str(args.seed_index),
    ]
    if args.ivf_nlist:
        flags += ["--ivf-nlist", str(args.ivf_nlist)]
    flags += ["--vocabulary", str(args.vocabulary)] if args.vocabulary else ["--no-vocabulary"]
    return flags


def measure_size(n: int | None, args: argparse.Namespace) -> dict:
    """All phases for one corpus size (`None`: the real seed index, which is not rebuilt)."""
    flags = common_flags(args)
    if n is None:
        root = args.seed_index
        from indexer.store import resolve_version

        entry: dict[str, Any] = {"chunks": None, "label": "real", "bytes": dir_bytes(resolve_version(root))}
    else:
        print(f"{size_label(n)} chunks", file=sys.stderr)
        root = WORK / size_label(n) / "index"
        entry = {"chunks": n, "label": size_label(n), "build": run_phase("build", args, [*flags, "--size", str(n)])}
        entry["bytes"] = entry["build"]["bytes"]
    flags += ["--index-root", str(root)]
    entry["serve"] = run_phase("serve", args, flags)
    entry["chunks"] = entry["serve"]["chunks"]
    if n is None:
        entry["label"] = f"{round(entry['chunks'] / 1000)}k real"
    if args.faiss:
        entry["faiss"] = run_phase("faiss", args, flags)
    if not args.skip_rank_bm25 and entry["chunks"] <= args.rank_bm25_max:
        entry["rank_bm25"] = run_phase("rank_bm25", args, flags)
    else:
        entry["rank_bm25_skipped"] = (
            "--skip-rank-bm25"
            if args.skip_rank_bm25
            else f"above --rank-bm25-max {args.rank_bm25_max}: rank-bm25 is slow to build and query "
            "(at 1M chunks on 2 CPUs: ~2 min to tokenise and build, ~1.4 s per query, 2.5 GB)"
        )
    if n is not None and not args.keep:
        shutil.rmtree(WORK / size_label(n), ignore_errors=True)
    return entry


def print_tables(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title="Build (synthetic copies of PDQ) and size on disk")
    for h in ("chunks", "build s", "bm25 s", "faiss s", "peak RSS MB", "chunks.jsonl MB", "bm25 MB", "faiss MB"):
        t.add_column(h, justify="right")
    for r in results:
        b, size = r.get("build", {}), r["bytes"]
        t.add_row(
            r["label"],
            str(b.get("seconds", "-")),
            str(b.get("timings_s", {}).get("bm25", "-")),
            str(b.get("timings_s", {}).get("faiss", "-")),
            str(b.get("peak_rss_mb", "-")),
            f"{size.get('chunks.jsonl', 0) / 1e6:.0f}",
            f"{size.get('bm25', 0) / 1e6:.0f}",
            f"{size.get('dense.faiss', 0) / 1e6:.0f}",
        )
    console.print(t)
    t = Table(title="Serving: latency p50 / p95 ms (one query at a time) and memory")
    for h in ("chunks", "fused search", "bm25 (clinqa)", "encode", "faiss", "concept", "rank-bm25", "x", "RSS load MB"):
        t.add_column(h, justify="right")
    for r in results:
        s = r["serve"]
        rb = r.get("rank_bm25", {}).get("get_scores")
        ch = s["channels"]

        def pp(d: dict) -> str:
            return f"{d['p50_ms']:.1f} / {d['p95_ms']:.1f}"

        t.add_row(
            r["label"],
            pp(s["fused_search"]),
            pp(ch["bm25"]),
            pp(ch["encode"]),
            pp(ch["faiss"]) + f" ({s['faiss']['type']})",
            pp(ch["concept"]),
            pp(rb) if rb else "skipped",
            f"{rb['p50_ms'] / ch['bm25']['p50_ms']:.0f}x" if rb else "-",
            f"{s['rss_after_load_mb']:.0f} (peak {s['peak_rss_mb']:.0f})",
        )
    console.print(t)
    t = Table(title="bm25s scoring paths, p50 / p95 ms")
    names = list(dict.fromkeys(k for r in results for k in [*r["serve"]["bm25_paths"], *r["serve"]["top_k_paths"]]))
    t.add_column("chunks")
    for h in names:
        t.add_column(h, justify="right")
    for r in results:
        paths = {**r["serve"]["bm25_paths"], **r["serve"]["top_k_paths"]}
        t.add_row(
            r["label"], *(f"{paths[h]['p50_ms']:.2f} / {paths[h]['p95_ms']:.2f}" if h in paths else "-" for h in names)
        )
    console.print(t)
    t = Table(title="FAISS: build s, size MB, query p50 / p95 ms, recall@10 vs flat")
    for h in ("chunks", "method", "params", "build s", "MB", "p50 / p95 ms", "recall@10"):
        t.add_column(h, justify="right")
    for r in results:
        for kind, m in r.get("faiss", {}).get("methods", {}).items():
            params = {**m["params"], **m["search_params"]}
            params.pop("type", None)
            t.add_row(
                r["label"],
                kind,
                " ".join(f"{k}={v}" for k, v in params.items()),
                str(m["build_s"]),
                f"{m['bytes'] / 1e6:.0f}",
                f"{m['p50_ms']:.2f} / {m['p95_ms']:.2f}",
                f"{m['recall@10']:.3f}",
            )
    console.print(t)


def markdown(results: list[dict]) -> str:
    """The serving and FAISS tables as Markdown, for docs/results/performance.md."""

    def pp(d: dict | None) -> str:
        return f"{d['p50_ms']:.1f} / {d['p95_ms']:.1f}" if d else "skipped"

    lines = [
        "| chunks | fused search | BM25 (clinqa) | rank-bm25 | rank-bm25 / clinqa (p50) | query encoding | FAISS "
        "(served) | concept | RSS after load / peak MB | load s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, rb = r["serve"], r.get("rank_bm25", {}).get("get_scores")
        ch = s["channels"]
        ratio = f"{rb['p50_ms'] / ch['bm25']['p50_ms']:.0f}x" if rb else "-"
        lines.append(
            f"| {r['label']} | {pp(s['fused_search'])} | {pp(ch['bm25'])} | {pp(rb)} | {ratio} | {pp(ch['encode'])} "
            f"| {pp(ch['faiss'])} ({s['faiss']['type']}) | {pp(ch['concept'])} "
            f"| {s['rss_after_load_mb']:.0f} / {s['peak_rss_mb']:.0f} | {s['load_s']:.0f} |"
        )
    names = list(dict.fromkeys(k for r in results for k in [*r["serve"]["bm25_paths"], *r["serve"]["top_k_paths"]]))
    lines += ["", "| chunks | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for r in results:
        paths = {**r["serve"]["bm25_paths"], **r["serve"]["top_k_paths"]}
        cells = (f"{paths[h]['p50_ms']:.2f} / {paths[h]['p95_ms']:.2f}" if h in paths else "-" for h in names)
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| chunks | method | parameters | build s | size MB | query p50 / p95 ms | recall@10 vs flat |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for kind, m in r.get("faiss", {}).get("methods", {}).items():
            params = {**m["params"], **m["search_params"]}
            params.pop("type", None)
            params.pop("loaded_s", None)
            lines.append(
                f"| {r['label']} | {kind} | {' '.join(f'{k}={v}' for k, v in params.items())} | {m['build_s']} "
                f"| {m['bytes'] / 1e6:.0f} | {m['p50_ms']:.2f} / {m['p95_ms']:.2f} | {m['recall@10']:.3f} |"
            )
    lines += [
        "",
        "| chunks | build s | of which BM25 / FAISS s | build peak RSS MB | chunks.jsonl MB | bm25 MB | dense.faiss MB "
        "| embeddings.npy MB | graph.json MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, size = r.get("build", {}), r["bytes"]
        ts = b.get("timings_s", {})
        lines.append(
            f"| {r['label']} | {b.get('seconds', '-')} | {ts.get('bm25', '-')} / {ts.get('faiss', '-')} "
            f"| {b.get('peak_rss_mb', '-')} | "
            + " | ".join(
                f"{size.get(f, 0) / 1e6:.0f}"
                for f in ("chunks.jsonl", "bm25", "dense.faiss", "embeddings.npy", "graph.json")
            )
            + " |"
        )
    return "\n".join(lines)


def plot(results: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float, float]]] = {}

    def add(name: str, n: int, d: dict | None) -> None:
        if d:
            series.setdefault(name, []).append((n, d["p50_ms"], d["p95_ms"]))

    for r in results:
        n, s = r["chunks"], r["serve"]
        add("fused search (no rerank)", n, s["fused_search"])
        add("BM25 (clinqa, bm25s)", n, s["channels"]["bm25"])
        add("rank-bm25 BM25Okapi", n, r.get("rank_bm25", {}).get("get_scores"))
        add("query encoding (MiniLM)", n, s["channels"]["encode"])
        add("concept channel", n, s["channels"]["concept"])
        for kind, m in r.get("faiss", {}).get("methods", {}).items():
            add(f"FAISS {kind}", n, m)
    fig, ax = plt.subplots(figsize=(12, 6))
    for i, (name, pts) in enumerate(series.items()):
        pts.sort()
        xs = [p[0] for p in pts]
        color = f"C{i}"
        ax.plot(xs, [p[1] for p in pts], "o-", color=color, label=f"{name} p50")
        ax.plot(xs, [p[2] for p in pts], "s--", color=color, alpha=0.6, label=f"{name} p95")
    ax.axhline(50, color="grey", linestyle=":", label="50 ms target (fused p95)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chunks in the index")
    ax.set_ylabel("latency per query, ms (log)")
    ax.set_title(f"clinqa query latency vs corpus size ({os.cpu_count()} CPUs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000", help="Comma-separated chunk counts.")
    p.add_argument("--queries", type=int, default=200, help="Questions per latency measurement.")
    p.add_argument("--faiss", default="flat,hnsw,ivfpq", help="FAISS index types to compare ('' for none).")
    p.add_argument("--skip-rank-bm25", action="store_true", help="Do not measure rank-bm25.")
    p.add_argument("--rank-bm25-max", type=int, default=100_000, help="Largest size rank-bm25 is measured at.")
    p.add_argument("--skip-real", action="store_true", help="Do not measure the real seed index.")
    p.add_argument("--quick", action="store_true", help="Development run: 50k chunks, 30 queries, JSON to .cache.")
    p.add_argument("--seed-index", type=Path, default=REPO / ".cache" / "pdq-index", help="Index root to replicate.")
    p.add_argument("--vocabulary", type=Path, default=REPO / "corpus" / "demo" / "vocabulary.yaml")
    p.add_argument("--no-vocabulary", dest="vocabulary", action="store_const", const=None)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--hnsw-ef-construction", type=int, default=64)
    p.add_argument("--hnsw-ef-search", type=int, default=128)
    p.add_argument("--ivf-nlist", type=int, default=None, help="Default min(4 sqrt(n), 1024).")
    p.add_argument("--ivf-nprobe", type=int, default=16)
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OMP/MKL threads of the serving phase (OMP_NUM_THREADS); 0 keeps the libraries' defaults.",
    )
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--keep", action="store_true", help="Keep the synthetic indexes under .cache/scale.")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    p.add_argument("--plot", type=Path, default=REPO / "docs" / "results" / "scale-latency.png")
    p.add_argument(
        "--rerun",
        default="",
        help="Phases (e.g. serve,faiss) to measure again on the indexes an earlier --keep run left, replacing "
        "their results in --out.",
    )
    p.add_argument(
        "--from-json", type=Path, help="Re-print the tables, Markdown and plot of an earlier run's JSON; no measuring."
    )
    p.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    p.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--index-root", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.faiss = [m for m in args.faiss.split(",") if m]
    if args.quick:
        args.sizes, args.queries = "50000", min(args.queries, 30)
        args.out = WORK / "scale-quick.json"
        args.plot = WORK / "scale-quick.png"
    args.size_list = [int(x) for x in args.sizes.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.phase:
        args.phase_out.write_text(json.dumps(PHASES[args.phase](args)))
        return
    if args.rerun:
        previous = json.loads(args.out.read_text())
        for entry in previous["results"]:
            root = args.seed_index if entry["label"].endswith("real") else WORK / entry["label"] / "index"
            for phase in args.rerun.split(","):
                entry[phase] = run_phase(phase, args, [*common_flags(args), "--index-root", str(root)])
        previous["rerun"] = {"phases": args.rerun, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        args.out.write_text(json.dumps(previous, indent=2))
        args.from_json = args.out
    if args.from_json:
        results = json.loads(args.from_json.read_text())["results"]
        print_tables(results)
        print(markdown(results))
        plot(results, args.plot)
        return
    if not (args.seed_index / "current").exists():
        sys.exit(f"skipped: no seed index at {args.seed_index}/current (build the PDQ index with `clinqa index build`)")
    if not questions(1):
        sys.exit(f"skipped: no MedQuAD CancerGov questions under {data_dir() / 'medquad'} (set CLINQA_DATA)")
    WORK.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results = [] if args.skip_real else [measure_size(None, args)]
    results += [measure_size(n, args) for n in args.size_list]
    print_tables(results)
    print(markdown(results))
    plot(results, args.plot)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine(),
                "cpus": os.cpu_count(),
                "libraries": library_versions(),
                "command": " ".join(["python", "bench/scale.py", *(argv if argv is not None else sys.argv[1:])]),
                "seed": args.seed,
                "started": started,
                "sigma": SIGMA,
                "settings": {
                    "hnsw_m": args.hnsw_m,
                    "hnsw_ef_construction": args.hnsw_ef_construction,
                    "hnsw_ef_search": args.hnsw_ef_search,
                    "ivf_nlist": args.ivf_nlist or "min(4 sqrt(n), 1024)",
                    "ivf_nprobe": args.ivf_nprobe,
                    "vocabulary": str(args.vocabulary) if args.vocabulary else None,
                    "query_threads": args.threads or "library default",
                },
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()

"""Load on a real `clinqa serve` over the PDQ index: concurrent clients on /v1/search and /v1/ask, then the same
load with an index reload in the middle. Nothing may fail.

    python bench/load.py                               # 32 clients, 2 x 60 s (+ warm-up)
    python bench/load.py --duration 5 --clients 4      # a quick smoke run
    python bench/load.py --index-root .cache/pdq-index --no-reload-run

The index: the current version under --index-root (default: .cache/pdq-index when it exists, else
.cache/bench/pdq-index, built once from $CLINQA_DATA/nci/pdq with `clinqa index build`: many minutes on a CPU).
Its current version is copied, through indexer/store.py as the indexer writes versions, into a root of
the benchmark's own (.cache/bench/load-index), together with a second version: the same content under a new
version name. The source root is never changed. The server is `clinqa serve` in a subprocess, in open mode (no
API keys configured); --api-key/--admin-key are sent as X-API-Key when given. Its log goes to
.cache/bench/load-server.log.

Clients: asyncio + httpx, one connection each; each client loops for the duration, alternating /v1/search
(top_k 10) and /v1/ask (even clients start with search, odd ones with ask), on questions drawn with a fixed
seed from MedQuAD's CancerGov questions (the NCI side of MedQuAD, matching the PDQ corpus). A request fails
on a non-2xx status, a connection error or a timeout (--timeout, generous: with 32 clients on a few cores,
requests queue for seconds, which the latency columns show). Latency is measured at the client, request sent
to body read. A probe polls GET /readyz every 0.5 s meanwhile: the server must stay responsive under load.

Reload run: at half time `current` is switched to the other version (indexer.store.activate, an atomic
symlink swap) and POST /v1/admin/reload is sent (the clients go on for at least a quarter of the duration
after it returns, so a slow reload extends the run); the run records which index version answered each
request, before, during and after the swap. Prints tables and writes JSON (bench/results/load.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from search_latency import percentile, serve  # noqa: E402  (the benches' one server starter)

CACHE = REPO / ".cache" / "bench"
SEED = 13
TOP_K = 10
ENDPOINTS = ("/v1/search", "/v1/ask")
PROBE_INTERVAL_S = 0.5

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def load_questions(data: Path, n: int, seed: int) -> list[str]:
    """`n` distinct CancerGov questions, drawn with `seed` from all of them in file order."""
    found: dict[str, None] = {}
    for path in sorted((data / "medquad" / "1_CancerGov_QA").glob("*.xml")):
        for q in ET.parse(path).getroot().iter("Question"):
            if text := (q.text or "").strip():
                found[text] = None
    questions = list(found)
    random.Random(seed).shuffle(questions)
    return questions[:n]


# --- the index: a root of the benchmark's own, with two versions of the same content -------------------------


def build_pdq_index(data: Path, root: Path) -> None:
    """Build the PDQ index once (`clinqa index build`, as bench/index_build.py does), cached under .cache/bench."""
    corpus = CACHE / "pdq-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for f in sorted((data / "nci" / "pdq").glob("*.md")):
        link = corpus / f.name
        if not link.is_symlink():
            link.symlink_to(f.resolve())
    err.print(f"building the PDQ index under {root} (embeds every chunk: many minutes on a CPU) ...")
    cmd = [sys.executable, "-m", "app.cli", "index", "build", "--corpus", str(corpus), "--no-vocabulary"]
    proc = subprocess.run([*cmd, "--root", str(root)], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        sys.exit(f"index build failed: {lines[-1] if lines else proc.returncode}")


def copy_version(source: Path, root: Path, version: str | None = None) -> str:
    """Write the version at `source` into `root` with indexer.store (temporary directory, then renamed into
    place); under a new version name (its `previous_version`: the source) unless `version` is given."""
    from indexer.store import new_version_name, read_embeddings, read_index, write_version

    index = read_index(source)
    manifest = index.manifest
    if version is None:
        now = datetime.now(UTC)
        version = new_version_name(manifest.index_id, now)
        manifest = manifest.model_copy(
            update={
                "version": version,
                "previous_version": index.version,
                "created_at": now.isoformat(timespec="seconds"),
            }
        )
    write_version(root, manifest, index.chunks, index.bm25, index.dense, read_embeddings(source), index.graph)
    return version


def prepare_index(source_root: Path, root: Path) -> tuple[str, str]:
    """`root` with the source's current version (activated) and a copy of it under another name, both reused
    from an earlier run when present. Returns (base version, reload version)."""
    from indexer.store import (
        activate,
        list_versions,
        read_manifest,
        remove_stale_temporaries,
        remove_version,
        resolve_version,
    )

    source = resolve_version(source_root)
    base = read_manifest(source).version
    remove_stale_temporaries(root)
    if base not in list_versions(root):
        err.print(f"copying index version {base} into {root} ...")
        copy_version(source, root, base)
    activate(root, base)
    copies = [v for v in list_versions(root) if v != base and read_manifest(root / v).previous_version == base]
    if copies:
        reload = copies[-1]
    else:
        err.print(f"writing a second version of {base} for the reload ...")
        reload = copy_version(root / base, root)
    for stale in set(list_versions(root)) - {base, reload}:
        remove_version(root, stale)
    return base, reload


# --- the server --------------------------------------------------------------------------------------------


# --- the load ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    endpoint: str
    started_s: float  # since the run started
    finished_s: float
    status: int | None
    error: str | None  # None: a 2xx with the expected body
    version: str | None  # the index version that answered

    @property
    def latency_ms(self) -> float:
        return (self.finished_s - self.started_s) * 1000


@dataclass
class ReloadEvent:
    at_s: float = 0.0  # `current` switched and the reload sent
    done_s: float = 0.0
    status: int | None = None
    body: dict = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunData:
    samples: list[Sample]
    probes: list[Sample]
    seconds: float
    reload: ReloadEvent | None = None
    load_average: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average at start and end


async def request(
    client: httpx.AsyncClient, method: str, path: str, t0: float, body: dict | None = None, headers: dict | None = None
) -> Sample:
    started = time.perf_counter() - t0
    status = version = error = None
    try:
        r = await client.request(method, path, json=body, headers=headers)
        status = r.status_code
        if not r.is_success:
            error = f"http {r.status_code}"
        else:
            version = r.json().get("index_version")
    except httpx.TimeoutException as exc:
        error = f"timeout ({type(exc).__name__})"
    except httpx.TransportError as exc:
        error = f"connection ({type(exc).__name__})"
    except ValueError:
        error = "body is not JSON"
    return Sample(path, started, time.perf_counter() - t0, status, error, version)


@dataclass
class Deadline:
    at: float  # perf_counter time after which clients send nothing new
    held: bool = False  # while True, clients go on past `at` (a reload has not returned yet)


async def client_loop(
    i: int,
    client: httpx.AsyncClient,
    questions: list[str],
    t0: float,
    until: Deadline,
    headers: dict,
    into: list,
    seed: int = SEED,
) -> None:
    rng = random.Random(seed * 1000 + i)
    n = i % 2  # even clients start with /v1/search, odd ones with /v1/ask
    while time.perf_counter() < until.at or until.held:
        endpoint, question = ENDPOINTS[n % 2], rng.choice(questions)
        body = {"query": question, "top_k": TOP_K} if endpoint == "/v1/search" else {"question": question}
        into.append(await request(client, "POST", endpoint, t0, body, headers))
        n += 1


async def probe_loop(client: httpx.AsyncClient, t0: float, stop: asyncio.Event, into: list) -> None:
    while not stop.is_set():
        into.append(await request(client, "GET", "/readyz", t0))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_INTERVAL_S)


async def reload_at(
    client: httpx.AsyncClient, t0: float, until: Deadline, root: Path, version: str, headers: dict
) -> ReloadEvent:
    """At half time: switch `current` and reload. The clients go on for at least a quarter of the duration after
    the reload returns (extending the run if it returns late), so that requests sent after the swap are seen."""
    from indexer.store import activate

    half = (until.at - t0) / 2
    try:
        await asyncio.sleep(max(0.0, t0 + half - time.perf_counter()))
        event = ReloadEvent(at_s=time.perf_counter() - t0)
        await asyncio.to_thread(activate, root, version)
        try:
            r = await client.post("/v1/admin/reload", headers=headers, timeout=600)
            event.status = r.status_code
            event.body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            event.error = f"{type(exc).__name__}: {exc}"
        event.done_s = time.perf_counter() - t0
        until.at = max(until.at, t0 + event.done_s + half / 2)
    finally:
        until.held = False  # the clients stop, whatever happened here
    return event


async def run_load(
    url: str,
    questions: list[str],
    clients: int,
    duration: float,
    timeout: float,
    headers: dict,
    reload: tuple[Path, str, dict] | None = None,
    seed: int = SEED,
) -> RunData:
    """`clients` loops for `duration` seconds (requests in flight then finish); with `reload` = (root, version,
    admin headers), `current` is switched to that version and the server told to reload at half time."""
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(timeout, connect=30), limits=limits) as client:
        samples: list[Sample] = []
        probes: list[Sample] = []
        stop = asyncio.Event()
        load_start = os.getloadavg()[0]
        t0 = time.perf_counter()
        until = Deadline(t0 + duration, held=reload is not None)
        probe = asyncio.create_task(probe_loop(client, t0, stop, probes))
        reloader = asyncio.create_task(reload_at(client, t0, until, *reload)) if reload else None
        loops = [client_loop(i, client, questions, t0, until, headers, samples, seed) for i in range(clients)]
        if reloader:  # the clients' deadline may move when the reload returns late
            loops.append(reloader)
        done = await asyncio.gather(*loops)
        event = done[-1] if reloader else None
        stop.set()
        await probe
        seconds = max((s.finished_s for s in samples), default=time.perf_counter() - t0)
    return RunData(samples, probes, seconds, event, (load_start, os.getloadavg()[0]))


# --- results -----------------------------------------------------------------------------------------------


def stats(samples: list[Sample], seconds: float) -> dict:
    ok = [s.latency_ms for s in samples if s.error is None]
    row = {
        "requests": len(samples),
        "errors": sum(s.error is not None for s in samples),
        "error_kinds": dict(Counter(s.error for s in samples if s.error)),
        "rps": round(len(samples) / seconds, 2) if seconds else 0.0,
    }
    if ok:
        row |= {
            "p50_ms": round(statistics.median(ok), 1),
            "p95_ms": round(percentile(ok, 95), 1),
            "p99_ms": round(percentile(ok, 99), 1),
            "max_ms": round(max(ok), 1),
            "mean_ms": round(statistics.fmean(ok), 1),
        }
    return row


def versions(samples: list[Sample]) -> dict[str, int]:
    return dict(Counter(s.version or "-" for s in samples if s.error is None))


def summarize(name: str, data: RunData, base: str | None = None) -> dict:
    result = {
        "run": name,
        "seconds": round(data.seconds, 2),
        "load_average_1m": [round(x, 1) for x in data.load_average],
        "endpoints": {e: stats([s for s in data.samples if s.endpoint == e], data.seconds) for e in ENDPOINTS},
        "all": stats(data.samples, data.seconds),
        "readyz_probe": stats(data.probes, data.seconds),
        "failed_requests": sum(s.error is not None for s in data.samples),
        "versions": versions(data.samples),
    }
    if (event := data.reload) is not None:
        before = [s for s in data.samples if s.finished_s < event.at_s]
        during = [s for s in data.samples if s.finished_s >= event.at_s and s.started_s < event.done_s]
        after = [s for s in data.samples if s.started_s >= event.done_s]
        new = event.body.get("index_version")
        result["reload"] = {
            **asdict(event),
            "seconds": round(event.done_s - event.at_s, 2),
            "from_version": base,
            "to_version": new,
            "versions_before": versions(before),
            "versions_during": versions(during),
            "versions_after": versions(after),
            # a request that began after the reload had returned must see the new version
            "stale_after": sum(s.error is None and s.version != new for s in after),
            "failed_during": sum(s.error is not None for s in during),
        }
    return result


def print_tables(results: list[dict], header: str) -> None:
    table = Table(title=header, title_justify="left")
    for col in ("run", "endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("run", "endpoint") else "right")
    for r in results:
        rows = [*r["endpoints"].items(), ("all", r["all"]), ("GET /readyz probe", r["readyz_probe"])]
        for endpoint, s in rows:
            table.add_row(
                r["run"],
                endpoint,
                str(s["requests"]),
                str(s["errors"]),
                f"{s['rps']:.1f}",
                *(f"{s[k]:.0f}" if k in s else "-" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            )
        table.add_section()
    out.print(table)
    loads = ", ".join(f"{r['run']} {r['load_average_1m'][0]:.1f} -> {r['load_average_1m'][1]:.1f}" for r in results)
    out.print(f"1-minute load average (the server's own threads included) per run: {loads}", highlight=False)
    for r in results:
        kinds = {k: v for s in (*r["endpoints"].values(), r["readyz_probe"]) for k, v in s["error_kinds"].items()}
        if kinds:
            out.print(f"{r['run']}: errors by kind: {kinds}", highlight=False)
        if (rl := r.get("reload")) is not None:
            outcome = f"HTTP {rl['status']} {rl['body'].get('status')}" if rl["status"] else rl["error"]
            out.print(
                f"{r['run']}: reload at {rl['at_s']:.1f} s took {rl['seconds']:.1f} s ({outcome}): "
                f"{rl['from_version']} -> {rl['to_version']}; failed requests in the run: {r['failed_requests']}",
                highlight=False,
            )
            out.print(f"  versions answering, finished before the reload: {rl['versions_before']}", highlight=False)
            out.print(f"  in flight or sent while it loaded:              {rl['versions_during']}", highlight=False)
            out.print(
                f"  sent after it returned:                        {rl['versions_after']} "
                f"(old version: {rl['stale_after']})",
                highlight=False,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help="Seconds per run.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent clients.")
    parser.add_argument("--no-reload-run", action="store_true", help="Only the first run (no reload).")
    parser.add_argument("--data", type=Path, default=data_dir(), help="Shared data ($CLINQA_DATA).")
    parser.add_argument("--index-root", type=Path, help="PDQ index root with a `current` version (read only).")
    parser.add_argument("--questions", type=int, default=500, help="Questions drawn (seeded) from MedQuAD CancerGov.")
    parser.add_argument("--warmup", type=float, default=10, help="Seconds of untimed load before the runs.")
    parser.add_argument("--timeout", type=float, default=300, help="Client timeout per request, seconds.")
    parser.add_argument("--api-key", help="Sent as X-API-Key on /v1/search and /v1/ask.")
    parser.add_argument("--admin-key", help="Sent as X-API-Key on /v1/admin/reload.")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = parser.parse_args()
    if args.duration <= 0 or args.clients < 1:
        sys.exit("--duration must be > 0 and --clients >= 1")

    needed = [args.data / "medquad" / "1_CancerGov_QA"]
    if args.index_root is None:
        args.index_root = REPO / ".cache" / "pdq-index"
        if not (args.index_root / "current").exists():
            args.index_root = CACHE / "pdq-index"
            if not (args.index_root / "current").exists():
                needed.append(args.data / "nci" / "pdq")
    elif not (args.index_root / "current").exists():
        sys.exit(f"no current index under {args.index_root}; build one with `clinqa index build --root ...`")
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        print(f"skipped: data not found: {', '.join(missing)} (set CLINQA_DATA or pass --data)")
        return
    if not (args.index_root / "current").exists():
        build_pdq_index(args.data, args.index_root)

    questions = load_questions(args.data, args.questions, args.seed)
    root = CACHE / "load-index"
    base, other = prepare_index(args.index_root.resolve(), root)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    admin_headers = {"X-API-Key": args.admin_key} if args.admin_key else {}
    log_path = CACHE / "load-server.log"
    results: list[dict] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")} | {"CLINQA_INDEX__ROOT": str(root)}
    with serve(env, log_path) as url:  # open mode: no keys configured
        err.print(f"server ready at {url} on index {base}; warm-up {args.warmup:.0f} s ...")
        warm = {"search": {"query": questions[0], "top_k": TOP_K}, "ask": {"question": questions[0]}}
        for name, body in warm.items():
            httpx.post(f"{url}/v1/{name}", json=body, headers=headers, timeout=args.timeout).raise_for_status()
        if args.warmup > 0:
            asyncio.run(run_load(url, questions, args.clients, args.warmup, args.timeout, headers, seed=args.seed + 1))
        err.print(f"run 1: {args.clients} clients, {args.duration:.0f} s ...")
        data = asyncio.run(run_load(url, questions, args.clients, args.duration, args.timeout, headers, seed=args.seed))
        results.append(summarize("steady", data))
        if not args.no_reload_run:
            err.print(f"run 2: {args.clients} clients, {args.duration:.0f} s, reload to {other} at half time ...")
            reload = (root, other, admin_headers)
            load = run_load(url, questions, args.clients, args.duration, args.timeout, headers, reload, args.seed)
            data = asyncio.run(load)
            results.append(summarize("reload", data, base))
    from indexer.store import activate

    activate(root, base)  # the next run starts from the same version

    machine = f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"
    header = f"{args.clients} clients x {args.duration:.0f} s on /v1/search + /v1/ask, PDQ index {base}, on {machine}"
    print_tables(results, header)
    failed = sum(r["failed_requests"] for r in results)
    reload_ok = all(r["reload"]["status"] == 200 and not r["reload"]["stale_after"] for r in results if "reload" in r)
    summary = {
        "benchmark": "load",
        "command": " ".join(["python bench/load.py", *sys.argv[1:]]),
        "machine": machine,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "clients": args.clients,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "timeout_s": args.timeout,
        "questions": len(questions),
        "seed": args.seed,
        "top_k": TOP_K,
        "index": {"source_root": str(args.index_root), "root": str(root), "version": base, "reload_version": other},
        "server": "clinqa serve (one uvicorn process), open mode, default settings, CLINQA_INDEX__ROOT only",
        "medians_ms": {r["run"]: {e: s.get("p50_ms") for e, s in r["endpoints"].items()} for r in results},
        "failed_requests": failed,
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp") as fh:
        fh.write(json.dumps(summary, indent=2) + "\n")
    os.replace(fh.name, args.out)
    out.print(f"\nfailed requests: {failed}; wrote {args.out}", highlight=False)
    if failed or not reload_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

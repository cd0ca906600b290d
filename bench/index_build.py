"""Full versus incremental index build: change one document, rebuild, compare.

    python bench/index_build.py                       # all NCI PDQ summaries from $CLINQA_DATA
    python bench/index_build.py --limit 40            # a quicker subset
    python bench/index_build.py --device cuda         # embeddings on the GPU

Both builds run the real `clinqa index build` command in a subprocess (so each has its own peak
memory); the corpus is a temporary folder of links to the source files, and the changed document is
a temporary copy with one paragraph appended. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def build(corpus: Path, root: Path, report: Path, device: str, full: bool) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "index",
        "build",
        "--corpus",
        str(corpus),
        "--no-vocabulary",
        "--root",
        str(root),
        "--device",
        device,
        "--report",
        str(report),
    ]
    if full:
        cmd.append("--full")
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"build failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    result = json.loads(report.read_text())
    result["wall_s"] = round(wall, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=data_dir() / "nci" / "pdq")
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N files (0 = all).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "index_build.json")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus} (set CLINQA_DATA or pass --corpus)")
    files = sorted(p for p in args.corpus.iterdir() if p.suffix == ".md")
    if args.limit:
        files = files[: args.limit]

    with tempfile.TemporaryDirectory(prefix="clinqa-bench-") as tmp:
        corpus, root = Path(tmp) / "corpus", Path(tmp) / "indexes"
        corpus.mkdir()
        for f in files:
            (corpus / f.name).symlink_to(f.resolve())
        full = build(corpus, root, Path(tmp) / "full.json", args.device, full=True)
        # Change one document: a mid-sized one, so the incremental build has real work to do.
        changed = sorted(files, key=lambda f: f.stat().st_size)[len(files) // 2]
        (corpus / changed.name).unlink()
        (corpus / changed.name).write_text(
            changed.read_text(encoding="utf-8")
            + "\n\n## Benchmark note\n\nThis paragraph was added by the benchmark.\n",
            encoding="utf-8",
        )
        incremental = build(corpus, root, Path(tmp) / "incremental.json", args.device, full=False)

    ratio = incremental["wall_s"] / full["wall_s"]
    rows = [
        ("documents", full["documents"], incremental["documents"]),
        ("chunks", full["chunks"], incremental["chunks"]),
        ("chunks embedded", full["embedded"], incremental["embedded"]),
        ("chunks over token limit", full["over_token_limit"], incremental["over_token_limit"]),
        ("build time (s, in process)", full["seconds"], incremental["seconds"]),
        ("wall time (s, with start-up)", full["wall_s"], incremental["wall_s"]),
        ("throughput (chunks/s)", full["chunks_per_s"], incremental["chunks_per_s"]),
        ("peak memory (MB)", full["peak_memory_mb"], incremental["peak_memory_mb"]),
        ("skipped files", len(full["skipped"]), len(incremental["skipped"])),
    ]
    machine = f"{platform.node()} ({os.cpu_count()} CPUs, {args.device})"
    print(f"\nindex build, {len(files)} files from {args.corpus} on {machine}")
    print(f"changed document: {changed.name}\n")
    print(f"| {'':30} | {'full':>12} | {'incremental':>12} |")
    print(f"|{'-' * 32}|{'-' * 14}|{'-' * 14}|")
    for name, a, b in rows:
        print(f"| {name:30} | {a:>12} | {b:>12} |")
    print(f"\nincremental / full wall time: {ratio:.3f} ({ratio:.1%})")
    print("stage times (s), full:        ", full["timings_s"])
    print("stage times (s), incremental: ", incremental["timings_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "corpus": str(args.corpus),
                "files": len(files),
                "device": args.device,
                "cpus": os.cpu_count(),
                "changed_document": changed.name,
                "full": full,
                "incremental": incremental,
                "ratio_wall": round(ratio, 4),
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""Full versus incremental index build: change one document, rebuild, compare.

    python bench/index_build.py                       # all NCI PDQ summaries from $CLINQA_DATA
    python bench/index_build.py --limit 40            # a quicker subset
    python bench/index_build.py --run cpu --run cuda --run cuda,fp16,256   # CPU vs GPU side by side

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
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def build(corpus: Path, root: Path, report: Path, run: Run, full: bool) -> dict:
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
        run.device,
        "--precision",
        run.precision,
        "--batch-size",
        str(run.batch_size),
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


@dataclass(frozen=True)
class Run:
    device: str
    precision: str = "fp32"
    batch_size: int = 32

    @classmethod
    def parse(cls, text: str) -> Run:
        """`cpu`, `cuda`, `cuda,fp16` or `cuda,fp16,256`."""
        parts = text.split(",")
        try:
            return cls(parts[0], *(parts[1:2] or ["fp32"]), *[int(p) for p in parts[2:3]])
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"--run wants DEVICE[,PRECISION[,BATCH]], got {text!r}") from exc

    @property
    def label(self) -> str:
        return f"{self.device} {self.precision} batch {self.batch_size}"


def full_and_incremental(files: list[Path], run: Run) -> dict:
    """A full build, then one document changed and an incremental build on top of it."""
    with tempfile.TemporaryDirectory(prefix="clinqa-bench-") as tmp:
        corpus, root = Path(tmp) / "corpus", Path(tmp) / "indexes"
        corpus.mkdir()
        for f in files:
            (corpus / f.name).symlink_to(f.resolve())
        full = build(corpus, root, Path(tmp) / "full.json", run, full=True)
        # Change one document: a mid-sized one, so the incremental build has real work to do.
        changed = sorted(files, key=lambda f: f.stat().st_size)[len(files) // 2]
        (corpus / changed.name).unlink()
        (corpus / changed.name).write_text(
            changed.read_text(encoding="utf-8")
            + "\n\n## Benchmark note\n\nThis paragraph was added by the benchmark.\n",
            encoding="utf-8",
        )
        incremental = build(corpus, root, Path(tmp) / "incremental.json", run, full=False)
    return {
        **asdict(run),
        "changed_document": changed.name,
        "full": full,
        "incremental": incremental,
        "ratio_wall": round(incremental["wall_s"] / full["wall_s"], 4),
    }


def print_run(result: dict) -> None:
    full, incremental = result["full"], result["incremental"]
    rows = [
        ("documents", full["documents"], incremental["documents"]),
        ("chunks", full["chunks"], incremental["chunks"]),
        ("chunks embedded", full["embedded"], incremental["embedded"]),
        ("chunks over token limit", full["over_token_limit"], incremental["over_token_limit"]),
        ("build time (s, in process)", full["seconds"], incremental["seconds"]),
        ("wall time (s, with start-up)", full["wall_s"], incremental["wall_s"]),
        ("throughput (chunks/s)", full["chunks_per_s"], incremental["chunks_per_s"]),
        ("embedding (s)", full["timings_s"]["embed"], incremental["timings_s"]["embed"]),
        ("peak memory (MB)", full["peak_memory_mb"], incremental["peak_memory_mb"]),
        ("skipped files", len(full["skipped"]), len(incremental["skipped"])),
    ]
    print(
        f"\n{result['device']} {result['precision']} batch {result['batch_size']}, "
        f"changed document: {result['changed_document']}\n"
    )
    print(f"| {'':30} | {'full':>12} | {'incremental':>12} |")
    print(f"|{'-' * 32}|{'-' * 14}|{'-' * 14}|")
    for name, a, b in rows:
        print(f"| {name:30} | {a:>12} | {b:>12} |")
    print(f"\nincremental / full wall time: {result['ratio_wall']:.3f} ({result['ratio_wall']:.1%})")
    print("stage times (s), full:        ", full["timings_s"])
    print("stage times (s), incremental: ", incremental["timings_s"])


def gpu_name() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=data_dir() / "nci" / "pdq")
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N files (0 = all).")
    parser.add_argument(
        "--run",
        type=Run.parse,
        action="append",
        help="DEVICE[,PRECISION[,BATCH]] to build with (repeatable; compared side by side). Default: cpu.",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "index_build.json")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus} (set CLINQA_DATA or pass --corpus)")
    files = sorted(p for p in args.corpus.iterdir() if p.suffix == ".md")
    if args.limit:
        files = files[: args.limit]
    runs = args.run or [Run("cpu")]
    summary = {
        "corpus": str(args.corpus),
        "files": len(files),
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "runs": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"index build, {len(files)} files from {args.corpus} on {platform.node()} "
        f"({os.cpu_count()} CPUs, GPU: {summary['gpu'] or 'none'})"
    )
    for run in runs:
        result = full_and_incremental(files, run)
        summary["runs"].append(result)
        print_run(result)
        args.out.write_text(json.dumps(summary, indent=2))  # after each run: a later failure loses nothing

    base = summary["runs"][0]["full"]["chunks_per_s"]
    print(
        f"\n| {'run':28} | {'full chunks/s':>13} | {'vs first':>8} | {'full s':>8} | {'incr. s':>8} "
        f"| {'incr./full':>10} |"
    )
    print(f"|{'-' * 30}|{'-' * 15}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 12}|")
    for r in summary["runs"]:
        label = f"{r['device']} {r['precision']} batch {r['batch_size']}"
        cps = r["full"]["chunks_per_s"]
        print(
            f"| {label:28} | {cps:>13.1f} | {cps / base:>7.2f}x | {r['full']['wall_s']:>8.1f} | "
            f"{r['incremental']['wall_s']:>8.1f} | {r['ratio_wall']:>10.1%} |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""Load the Disease Ontology and MONDO's exact-match mappings (UMLS, MeSH, DOID), merge them, and report.

    python bench/knowledge_load.py                          # data from $CLINQA_DATA or ../shared/data
    python bench/knowledge_load.py --shared-cui source_id   # keep DOID classes that share a CUI apart

Steps run in order in this process: time is wall time per step, memory is the process's peak
resident set size after the step (it only grows). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from knowledge.loaders import Mapping, load_obo_graph_json, load_sssom, merge_vocabularies, vocabulary_from_sssom
from knowledge.loaders._common import CUI_RE
from knowledge.schema import Vocabulary

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
RELATION_TYPES = ("isa", "has_symptom", "may_treat", "may_prevent", "diagnosed_by", "related_to")


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def timed(steps: list[dict[str, Any]], name: str, work: Callable[[], T], size: Callable[[T], int]) -> T:
    """Run one step, recording its wall time, its output size and the process's peak memory so far."""
    start = time.perf_counter()
    result = work()
    seconds = round(time.perf_counter() - start, 3)
    steps.append({"step": name, "items": size(result), "seconds": seconds, "peak_rss_mb": peak_rss_mb()})
    return result


def n_concepts(vocab: Vocabulary) -> int:
    return len(vocab.concepts)


class RefusedLinks(logging.Handler):
    """Collects the merge's "links refused" count from its log record (the merge returns only the vocabulary)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += int(getattr(record, "count", 0))


def summary(vocab: Vocabulary) -> dict[str, Any]:
    relations = Counter(r.type for r in vocab.relations)
    return {
        "concepts": len(vocab.concepts),
        "concepts keyed by CUI": sum(1 for c in vocab.concepts if CUI_RE.fullmatch(c.id)),
        "synonyms": sum(len(c.synonyms) for c in vocab.concepts),
        "abbreviations": sum(len(c.abbreviations) for c in vocab.concepts),
        "xrefs": sum(len(c.xrefs) for c in vocab.concepts),
        "multi-source concepts": sum(1 for c in vocab.concepts if len(c.sources) > 1),
        **{f"relations: {t}": relations.get(t, 0) for t in RELATION_TYPES},
        "relations (all)": len(vocab.relations),
    }


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """A Markdown table: first column left-aligned, the others right-aligned."""
    table = [header, *([str(x) for x in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    print(f"\n{title}\n")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print(line(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir(), help="The shared data folder.")
    parser.add_argument("--shared-cui", choices=["merge", "source_id"], default="merge")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "knowledge_load.json")
    args = parser.parse_args()
    ontology = args.data / "ontology"
    files = {
        "doid": ontology / "doid-2018-07-05.json.gz",
        "umls": ontology / "mondo_exactmatch_umls.sssom.tsv",
        "mesh": ontology / "mondo_exactmatch_mesh.sssom.tsv",
        "mondo_doid": ontology / "mondo_exactmatch_doid.sssom.tsv",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        sys.exit(f"data not found: {', '.join(missing)} (set CLINQA_DATA or pass --data)")

    steps: list[dict[str, Any]] = []
    start_rss = peak_rss_mb()
    doid = timed(
        steps,
        "Disease Ontology (OBO JSON)",
        lambda: load_obo_graph_json(files["doid"], shared_cui=args.shared_cui),
        n_concepts,
    )
    mondo = timed(
        steps,
        "MONDO->UMLS as concepts",
        lambda: vocabulary_from_sssom(files["umls"], "MONDO", ("T047",)),
        n_concepts,
    )
    mappings: dict[str, list[Mapping]] = {}
    for key in ("umls", "mesh", "mondo_doid"):
        mappings[key] = timed(steps, f"SSSOM {files[key].name}", lambda key=key: load_sssom(files[key]), len)
    all_mappings = [m for ms in mappings.values() for m in ms]
    refused = RefusedLinks()
    merge_log = logging.getLogger("knowledge.loaders.sssom")
    merge_log.addHandler(refused)
    merge_log.propagate = False  # counted and reported below, not printed mid-table
    merged = timed(steps, "merge", lambda: merge_vocabularies([doid, mondo], all_mappings), n_concepts)
    total_s = round(sum(s["seconds"] for s in steps), 3)

    summaries = {"DOID": summary(doid), "MONDO->UMLS": summary(mondo), "merged": summary(merged)}
    machine = f"{platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()})"
    print(f"\nknowledge load on {machine}; shared_cui={args.shared_cui}")
    print_table(
        "vocabularies",
        ["", *summaries],
        [[key, *(s[key] for s in summaries.values())] for key in summaries["DOID"]],
    )
    print_table(
        "steps",
        ["step", "concepts / mappings", "seconds", "peak RSS (MB)"],
        [[s["step"], s["items"], s["seconds"], s["peak_rss_mb"]] for s in steps]
        + [["total", "", total_s, peak_rss_mb()]],
    )
    print(f"\nmapping links refused by the merge (they would join two different CUIs): {refused.count}")
    print(f"RSS before loading: {start_rss} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "data": str(args.data),
                "files": {k: str(p) for k, p in files.items()},
                "shared_cui": args.shared_cui,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "mappings": {k: len(v) for k, v in mappings.items()},
                "links_refused": refused.count,
                "vocabularies": summaries,
                "versions": {"DOID": doid.version, "MONDO->UMLS": mondo.version},
                "steps": steps,
                "total_seconds": total_s,
                "rss_before_mb": start_rss,
                "peak_rss_mb": peak_rss_mb(),
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""Concept linker: throughput on the NCI PDQ summaries and focus-concept recall on MedQuAD.

    python bench/linker.py                       # defaults: ~6 MB of PDQ text, 2,000 MedQuAD documents
    python bench/linker.py --pdq-mb 2 --medquad-docs 500 --repeats 1    # a quick look

Throughput (MB of UTF-8 text per second, best of --repeats runs) for:
  legacy           the linker's original algorithm (every term length at every word), kept here as baseline
  exact            the trie linker, exact matching only, negation off
  exact+negation   ... with NegEx-style negation on
  tolerant+neg     ... with one-edit spelling correction as well (lexicon: corpus words in >= 2 documents)
on the demo vocabulary (437 concepts), the Disease Ontology (when knowledge.loaders is present) and a
synthetic vocabulary of 50,000 concepts with 300,000 surface forms drawn from the text itself.

MedQuAD recall: share of documents whose <Focus> CUI(s) the linker finds in the document's questions
and answers. The demo vocabulary is small and mostly cardiovascular/respiratory, so its recall is
low by construction; "covered" is the share of documents whose focus CUI is in the vocabulary at all.

Also writes .cache/linker_precision_sample.txt (not committed: it quotes the data): 30 random
mentions per vocabulary (and random tolerant and negated ones) with their context, for checking
precision by hand.
Data are read in place from $CLINQA_DATA (default ../shared/data); nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from knowledge.linker import ConceptLinker, Mention
from knowledge.schema import Concept, Vocabulary
from knowledge.sources import load_knowledge
from knowledge.vocabulary import load_vocabulary

REPO = Path(__file__).resolve().parents[1]
SEED = 13
_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_CUI_RE = re.compile(r"^(?:UMLS(?:_CUI)?:)?(C\d{7})$")


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


class LegacyLinker:
    """The linker before the trie (exact matching, same case and plural rules): for every word, try
    every term length from the longest down. Kept only as the throughput baseline."""

    def __init__(self, concepts: Iterable[Concept]) -> None:
        from knowledge.linker import _case_sensitive, _normalise

        self._normalise = _normalise
        self._entries: dict[tuple[str, ...], list[tuple[str, str, tuple[str, ...] | None]]] = {}
        self._max_len = 1
        for c in concepts:
            forms = [(c.name, "name")] + [(s, "synonym") for s in c.synonyms]
            forms += [(a, "abbreviation") for a in c.abbreviations]
            for form, via in forms:
                words = tuple(_WORD_RE.findall(form))
                if not words:
                    continue
                key = tuple(_normalise(w) for w in words)
                exact = words if via == "abbreviation" and _case_sensitive(form) else None
                bucket = self._entries.setdefault(key, [])
                if not any(e[0] == c.id and e[2] == exact for e in bucket):
                    bucket.append((c.id, via, exact))
                self._max_len = max(self._max_len, len(key))

    def link(self, text: str) -> list[tuple[str, int, int]]:
        words = list(_WORD_RE.finditer(text))
        norm = [self._normalise(m.group()) for m in words]
        out: list[tuple[str, int, int]] = []
        i = 0
        while i < len(words):
            matched = 0
            for n in range(min(self._max_len, len(words) - i), 0, -1):
                entries = self._entries.get(tuple(norm[i : i + n]))
                if not entries:
                    continue
                written = tuple(m.group() for m in words[i : i + n])
                hits = [e for e in entries if e[2] is None or e[2] == written]
                if hits:
                    start, end = words[i].start(), words[i + n - 1].end()
                    out.extend(dict.fromkeys((cid, start, end) for cid, _, _ in hits))
                    matched = n
                    break
            i += matched or 1
        return out


@dataclass
class MedquadDoc:
    doc_id: str
    focus: str
    cuis: frozenset[str]
    text: str


def read_medquad(root: Path, sample: int, rng: random.Random) -> list[MedquadDoc]:
    """Documents with a focus CUI and some question or answer text; a fixed-seed sample of them."""
    files = sorted(root.glob("*/*.xml"))
    if sample and sample < len(files):
        files = sorted(rng.sample(files, sample))
    docs = []
    for path in files:
        tree = ET.parse(path).getroot()
        cuis = frozenset(c.text.strip() for c in tree.iter("CUI") if c.text and c.text.strip())
        parts = [e.text.strip() for tag in ("Question", "Answer") for e in tree.iter(tag) if e.text and e.text.strip()]
        if cuis and parts:
            focus = (tree.findtext("Focus") or "").strip()
            docs.append(MedquadDoc(f"{path.parent.name}/{path.stem}", focus, cuis, "\n".join(parts)))
    return docs


def concept_cuis(concepts: Iterable[Concept]) -> dict[str, frozenset[str]]:
    """UMLS CUIs of each concept: its id when that is a CUI, and CUI cross-references."""
    out = {}
    for c in concepts:
        found = {m.group(1) for x in (c.id, *c.xrefs) if (m := _CUI_RE.match(x))}
        out[c.id] = frozenset(found)
    return out


def lexicon(texts: Iterable[str], min_docs: int = 2) -> set[str]:
    """Words in at least min_docs texts: known words that tolerant matching must not 'correct'."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update({w.lower() for w in _WORD_RE.findall(text)})
    return {w for w, n in df.items() if n >= min_docs}


def synthetic_vocabulary(
    texts: list[str], n_concepts: int, forms_per_concept: int, rng: random.Random
) -> list[Concept]:
    """Concepts whose surface forms are word sequences of the text (1-6 words; single words only when
    long), so that a big vocabulary also matches often, as a real one would."""
    words = [w for t in texts for w in _WORD_RE.findall(t)]
    forms: set[str] = set()
    while len(forms) < n_concepts * forms_per_concept:
        n = rng.choice((1, 2, 2, 3, 3, 4, 5, 6))
        i = rng.randrange(len(words) - n)
        if n == 1 and len(words[i]) < 8:
            continue
        forms.add(" ".join(words[i : i + n]))
    ordered = sorted(forms)
    rng.shuffle(ordered)
    concepts = []
    for k in range(n_concepts):
        chunk = ordered[k * forms_per_concept : (k + 1) * forms_per_concept]
        concepts.append(Concept(id=f"SYN:{k}", name=chunk[0], synonyms=tuple(chunk[1:])))
    return concepts


def n_forms(concepts: Iterable[Concept]) -> int:
    return sum(1 + len(c.synonyms) + len(c.abbreviations) for c in concepts)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time over repeats (the machine may be busy; the minimum is the least disturbed run)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def throughput_rows(
    name: str, concepts: list[Concept], texts: list[str], known: set[str], repeats: int, with_legacy: bool = True
) -> list[dict]:
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    builders: dict[str, Callable[[], object]] = {
        "exact": lambda: ConceptLinker(concepts, negation=False),
        "exact+negation": lambda: ConceptLinker(concepts),
        "tolerant+negation": lambda: ConceptLinker(concepts, tolerant=True, known_words=known),
    }
    if with_legacy:
        builders = {"legacy": lambda: LegacyLinker(concepts), **builders}
    rows = []
    for config, build in builders.items():
        build_s, linker = timed(build, 1)
        seconds, found = timed(lambda linker=linker: [m for t in texts for m in linker.link(t)], repeats)
        rows.append(
            {
                "vocabulary": name,
                "concepts": len(concepts),
                "forms": n_forms(concepts),
                "config": config,
                "text_mb": round(mb, 2),
                "build_s": round(build_s, 2),
                "link_s": round(seconds, 2),
                "mb_per_s": round(mb / seconds, 2),
                "mentions": len(found),  # type: ignore[arg-type]
            }
        )
    return rows


def recall_row(name: str, config: str, linker: ConceptLinker, cuis: dict[str, frozenset[str]], docs: list[MedquadDoc]):
    """Recall of focus CUIs; returns the row and every (doc, mention) for the precision sample."""
    known_cuis = set().union(*cuis.values()) if cuis else set()
    covered = found = 0
    mentions: list[tuple[MedquadDoc, Mention]] = []
    t = time.perf_counter()
    for doc in docs:
        linked = linker.link(doc.text)
        mentions.extend((doc, m) for m in linked)
        hit = bool(doc.cuis & set().union(*(cuis[m.concept_id] for m in linked))) if linked else False
        covered += bool(doc.cuis & known_cuis)
        found += hit
    seconds = time.perf_counter() - t
    row = {
        "vocabulary": name,
        "config": config,
        "documents": len(docs),
        "covered": covered,
        "found": found,
        "recall": round(found / len(docs), 4) if docs else 0.0,
        "recall_of_covered": round(found / covered, 4) if covered else 0.0,
        "mentions": len(mentions),
        "negated": sum(m.negated for _, m in mentions),
        "tolerant": sum(m.tolerant for _, m in mentions),
        "seconds": round(seconds, 2),
    }
    return row, mentions


def load_doid(path: Path) -> tuple[Vocabulary | None, str]:
    """The Disease Ontology through knowledge.loaders, or None and why not."""
    try:
        from knowledge.loaders import load_obo_graph_json  # type: ignore[attr-defined]
    except ImportError:
        try:
            from knowledge.loaders.obo_graph import load_obo_graph_json
        except ImportError as exc:
            return None, f"knowledge.loaders.load_obo_graph_json not available ({exc})"
    if not path.is_file():
        return None, f"not found: {path}"
    return load_obo_graph_json(path), "ok"


def _snippet(text: str, start: int, end: int, width: int = 60) -> str:
    left = " ".join(text[max(0, start - width) : start].split())
    right = " ".join(text[end : end + width].split())
    return f"...{left} [[{text[start:end]}]] {right}..."


def precision_lines(
    title: str, pool: list[tuple[MedquadDoc, Mention]], names: dict[str, str], k: int, rng: random.Random
) -> list[str]:
    picked = rng.sample(pool, min(k, len(pool)))
    lines = [f"== {title}: {len(picked)} of {len(pool)} ==", ""]
    for n, (doc, m) in enumerate(picked, 1):
        flags = [f for f, on in (("tolerant", m.tolerant), ("negated", m.negated)) if on]
        if m.alternatives:
            flags.append("alternatives=" + ",".join(m.alternatives))
        lines.append(f"{n:2d}. {m.text!r} -> {m.concept_id} {names.get(m.concept_id, '?')!r} {' '.join(flags)}")
        lines.append(f"    {doc.doc_id} (focus: {doc.focus}): {_snippet(doc.text, m.start, m.end)}")
        lines.append("    correct? [ ]")
    return [*lines, ""]


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print()


def pdq_sample(root: Path, mb: float, rng: random.Random) -> list[str]:
    files = sorted(root.glob("*.md"))
    rng.shuffle(files)
    texts, size = [], 0
    for f in files:
        if size >= mb * 1e6:
            break
        texts.append(f.read_text(encoding="utf-8"))
        size += len(texts[-1].encode("utf-8"))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--vocabulary", type=Path, default=REPO / "corpus" / "demo" / "vocabulary.yaml")
    parser.add_argument("--pdq-mb", type=float, default=6.0, help="MB of PDQ text to link (random files).")
    parser.add_argument("--synthetic-mb", type=float, default=2.0, help="MB of that text for the 300k-form vocabulary.")
    parser.add_argument("--medquad-docs", type=int, default=2000, help="MedQuAD documents to sample (0 = all).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "linker.json")
    parser.add_argument("--sample-out", type=Path, default=REPO / ".cache" / "linker_precision_sample.txt")
    args = parser.parse_args()
    pdq_dir, medquad_dir = args.data / "nci" / "pdq", args.data / "medquad"
    for d in (pdq_dir, medquad_dir):
        if not d.is_dir():
            sys.exit(f"data not found: {d} (set CLINQA_DATA or pass --data)")
    started = time.perf_counter()

    demo = load_vocabulary(args.vocabulary)
    doid, doid_status = load_doid(args.data / "ontology" / "doid-2018-07-05.json.gz")
    vocabularies: dict[str, list[Concept]] = {"demo": list(demo.concepts)}
    if doid is not None:
        vocabularies["doid"] = list(doid.concepts)
        # What an index build with every shared source uses: demo + DO merged through the MONDO mappings,
        # plus the abbreviation inventories.
        onto = args.data / "ontology"
        merged = load_knowledge(
            [args.vocabulary, onto / "doid-2018-07-05.json.gz"],
            [onto / "mondo_exactmatch_doid.sssom.tsv", onto / "mondo_exactmatch_umls.sssom.tsv"],
            args.data / "abbreviations",
        )
        vocabularies["demo+doid+mondo+abbrev"] = list(merged.concepts)

    texts = pdq_sample(pdq_dir, args.pdq_mb, random.Random(SEED))
    pdq_known = lexicon(p.read_text(encoding="utf-8") for p in sorted(pdq_dir.glob("*.md")))
    throughput: list[dict] = []
    for name, concepts in vocabularies.items():
        throughput += throughput_rows(name, concepts, texts, pdq_known, args.repeats)
    small: list[str] = []
    for t in texts:
        if sum(map(len, small)) >= args.synthetic_mb * 1e6:
            break
        small.append(t)
    synthetic = synthetic_vocabulary(texts, 50_000, 6, random.Random(SEED))
    throughput += throughput_rows("synthetic-300k", synthetic, small, pdq_known, max(1, args.repeats - 1))
    print_table(
        throughput,
        ["vocabulary", "concepts", "forms", "config", "text_mb", "build_s", "link_s", "mb_per_s", "mentions"],
    )

    docs = read_medquad(medquad_dir, args.medquad_docs, random.Random(SEED))
    medquad_known = lexicon(d.text for d in docs)
    recall: list[dict] = []
    sample_lines: list[str] = []
    rng = random.Random(SEED)
    for name, concepts in vocabularies.items():
        cuis, names = concept_cuis(concepts), {c.id: c.name for c in concepts}
        exact_row, _ = recall_row(name, "exact", ConceptLinker(concepts, negation=False), cuis, docs)
        after = ConceptLinker(concepts, tolerant=True, known_words=medquad_known)
        after_row, mentions = recall_row(name, "tolerant+negation", after, cuis, docs)
        recall += [exact_row, after_row]
        sample_lines += precision_lines(f"{name}: random mentions", mentions, names, 30, rng)
        sample_lines += precision_lines(
            f"{name}: random tolerant mentions", [x for x in mentions if x[1].tolerant], names, 30, rng
        )
        sample_lines += precision_lines(
            f"{name}: random negated mentions", [x for x in mentions if x[1].negated], names, 20, rng
        )
    print_table(
        recall,
        [
            "vocabulary",
            "config",
            "documents",
            "covered",
            "found",
            "recall",
            "recall_of_covered",
            "mentions",
            "negated",
            "tolerant",
            "seconds",
        ],
    )
    if doid is None:
        print(f"Disease Ontology skipped: {doid_status}")

    result = {
        "benchmark": "linker",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "seed": SEED,
        "repeats": args.repeats,
        "pdq": {"files": len(texts), "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 2)},
        "medquad": {"documents": len(docs), "sampled_from": "all" if not args.medquad_docs else args.medquad_docs},
        "doid": doid_status,
        "throughput": throughput,
        "recall": recall,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    header = [
        f"Linker precision sample (bench/linker.py, seed {SEED}): random mentions on MedQuAD questions and answers,",
        "linker with tolerant matching (lexicon: words in >= 2 sampled documents) and negation.",
        "Mark each line correct or not; the concept is correct when the [[span]] means that concept here.",
        "",
    ]
    args.sample_out.parent.mkdir(parents=True, exist_ok=True)
    args.sample_out.write_text("\n".join(header + sample_lines))
    print(f"wrote {args.out} and {args.sample_out} in {result['seconds']} s")


if __name__ == "__main__":
    main()

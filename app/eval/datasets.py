"""Evaluation collections: documents, queries and graded qrels, with a fixed train/test split.

- PubMedQA (`ori_pqal.json`): the 1,000 abstracts are the corpus; each question's gold document is its
  own abstract; the test split is the 500 ids of `test_ground_truth.json`.
- MedQuAD: every answer passage of the open folders is a document; each question is a query whose gold
  document is its own answer; a file goes to the test split when sha1(file id) % 5 == 0 (20%), so all
  questions about one focus stay on one side.
- Any collection: JSONL documents `{"id","title","text"}`, JSONL queries `{"id","text"}`, TREC qrels
  `qid 0 docid grade`.
"""

from __future__ import annotations

import hashlib
import json
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from app.eval.metrics import Qrels


class DatasetError(Exception):
    """A collection that cannot be read; the message names the file and the problem."""


@dataclass
class Collection:
    name: str
    documents: list[dict[str, str]]  # {"id", "title", "text"}
    queries: dict[str, str]
    qrels: Qrels
    notes: list[str] = field(default_factory=list)


def pubmedqa(data_dir: Path, split: str = "test") -> Collection:
    path = data_dir / "pubmedqa" / "ori_pqal.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
        test_ids = set(json.loads((data_dir / "pubmedqa" / "test_ground_truth.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    docs = [{"id": pmid, "title": f"PMID {pmid}", "text": "\n\n".join(r["CONTEXTS"])} for pmid, r in records.items()]
    chosen = [p for p in records if (p in test_ids) == (split == "test")]
    queries = {pmid: records[pmid]["QUESTION"] for pmid in chosen}
    return Collection(f"pubmedqa-{split}", docs, queries, {q: {q: 1} for q in queries})


def _medquad_file_split(file_id: str) -> str:
    return "test" if int(hashlib.sha1(file_id.encode()).hexdigest(), 16) % 5 == 0 else "train"


def medquad(data_dir: Path, split: str = "test", sample_files: int = 0, seed: int = 13) -> Collection:
    """`sample_files` > 0 keeps a fixed random sample of XML files (corpus and queries alike)."""
    root = data_dir / "medquad"
    files = sorted(root.glob("*/*.xml"))
    if not files:
        raise DatasetError(f"no MedQuAD XML files under {root}")
    notes = []
    if sample_files and sample_files < len(files):
        files = sorted(random.Random(seed).sample(files, sample_files))
        notes.append(f"sample of {sample_files} MedQuAD files (seed {seed})")
    docs: list[dict[str, str]] = []
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    seen: dict[str, int] = {}
    for path in files:
        try:
            tree = ET.parse(path)
        except ET.ParseError as exc:
            notes.append(f"skipped {path.name}: {exc}")
            continue
        doc = tree.getroot()
        file_id = f"{path.parent.name}/{path.stem}"
        focus = (doc.findtext("Focus") or "").strip()
        in_split = _medquad_file_split(file_id) == split
        for pair in doc.iter("QAPair"):
            question = (pair.findtext("Question") or "").strip()
            answer = (pair.findtext("Answer") or "").strip()
            qid = (pair.find("Question").get("qid") if pair.find("Question") is not None else None) or ""
            if not answer or not qid:
                continue  # MedQuAD removed some answers for copyright reasons
            doc_id = f"{path.parent.name}-{qid}"
            if doc_id in seen:  # a few MedQuAD files reuse a qid for two different pairs
                seen[doc_id] += 1
                doc_id = f"{doc_id}~{seen[doc_id]}"
            seen.setdefault(doc_id, 1)
            docs.append({"id": doc_id, "title": focus, "text": answer})
            if in_split and question:
                queries[doc_id] = question
                qrels[doc_id] = {doc_id: 1}
    return Collection(f"medquad-{split}", docs, queries, qrels, notes)


def from_files(corpus: Path, queries: Path, qrels: Path) -> Collection:
    def jsonl(path: Path) -> list[dict]:
        out = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DatasetError(f"{path}: {exc.strerror or exc}") from exc
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError as exc:
                raise DatasetError(f"{path}:{n}: invalid JSON ({exc})") from exc
        return out

    docs = [{"id": str(d["id"]), "title": str(d.get("title") or ""), "text": str(d["text"])} for d in jsonl(corpus)]
    qs = {str(q["id"]): str(q["text"]) for q in jsonl(queries)}
    judged: Qrels = {}
    try:
        for n, line in enumerate(qrels.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise DatasetError(f"{qrels}:{n}: expected 'qid 0 docid grade', got {line!r}")
            judged.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{qrels}: {exc}") from exc
    return Collection(corpus.stem, docs, {q: t for q, t in qs.items() if q in judged}, judged)

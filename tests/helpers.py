"""Tiny test data and real servers, shared by the tests (no mocks: real models, indexes, sockets)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

REPO = Path(__file__).resolve().parents[1]

TINY_DOCS = {
    "hypertension.md": """---
title: "Hypertension in adults"
organisation: "Test Guideline Group"
url: "https://example.org/hypertension"
published: "2024-01-01"
reviewed: "2025-06-01"
version: "2.1"
disclaimer: "demonstration only, not for clinical use"
---

# Hypertension

Test document for clinqa unit tests.

## Diagnosis

Hypertension is confirmed with ambulatory blood pressure monitoring when clinic blood pressure is 140/90 mmHg or higher.

## Treatment

### First-line drugs

- An ACE inhibitor such as ramipril 2.5 mg once daily is step 1 for adults under 55.
- A calcium-channel blocker such as amlodipine 5 mg once daily is step 1 for adults aged 55 and over.

### Targets

The clinic blood pressure target for adults under 80 is below 140/90 mmHg.

## References

1. Some reference that must not be indexed.
""",
    "asthma.md": """---
title: "Asthma in adults"
organisation: "Test Guideline Group"
url: "https://example.org/asthma"
---

# Asthma

## Maintenance treatment

Inhaled corticosteroids are the foundation of asthma maintenance treatment.
Low-dose budesonide-formoterol can be used as needed for symptom relief.

## Acute attacks

Oral prednisolone 40 mg daily for 5 days is given for an acute asthma attack.
""",
    "gout.md": """# Gout

## Acute flare

Colchicine 500 micrograms two to four times daily is an option for an acute gout flare.
An NSAID such as naproxen is an alternative for a gout flare when colchicine is not tolerated.

## Urate-lowering therapy

Allopurinol starts at 100 mg daily and is titrated to keep serum urate below 360 micromol/L.
""",
}

TINY_VOCABULARY = """
version: "test"
semantic_types: {T047: "Disease or Syndrome", T121: "Pharmacologic Substance"}
concepts:
  - {id: "C0020538", name: "Hypertension", semantic_types: ["T047"], synonyms: ["high blood pressure"],
     abbreviations: ["HTN"]}
  - {id: "C0004096", name: "Asthma", semantic_types: ["T047"], synonyms: ["bronchial asthma"]}
  - {id: "C0018099", name: "Gout", semantic_types: ["T047"], synonyms: ["gouty arthritis"]}
  - {id: "C0002144", name: "Allopurinol", semantic_types: ["T121"], synonyms: ["Zyloprim"]}
  - {id: "C0009262", name: "Colchicine", semantic_types: ["T121"]}
relations:
  - {source: "C0002144", type: "may_treat", target: "C0018099"}
  - {source: "C0009262", type: "may_treat", target: "C0018099"}
"""


def write_tiny_corpus(root: Path) -> tuple[Path, Path]:
    corpus = root / "tiny"
    corpus.mkdir(parents=True)
    for name, text in TINY_DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    vocab = root / "vocabulary.yaml"
    vocab.write_text(TINY_VOCABULARY, encoding="utf-8")
    return corpus, vocab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_thread(app):
    """Serve an ASGI app on a real loopback socket in a background thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def clinqa(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed `clinqa` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )


@contextmanager
def clinqa_server(env: dict[str, str], output: Path | None = None):
    """`clinqa serve` as a real subprocess on a free port; yields its base URL once ready. Everything it writes
    (stdout and stderr) goes to `output` (a temporary file when not given), so a chatty server never blocks on
    a full pipe and a test can read its logs."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        if output is None:
            output = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "serve.log"
        with output.open("w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                env=env,
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"clinqa serve exited early:\n{output.read_text()}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"clinqa serve did not become ready in 120 s:\n{output.read_text()}")
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_tiny_bert(path: Path, num_labels: int | None = None) -> Path:
    """A random-weight two-layer BERT (a cross-encoder head when `num_labels` is given), saved with transformers."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    words = sorted(
        {w.lower() for text in TINY_DOCS.values() for w in re.findall(r"[A-Za-z]+", text)}
        | set("what is the first line drug for how treat".split())
    )
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        **({"num_labels": num_labels} if num_labels else {}),
    )
    model = BertForSequenceClassification(config) if num_labels else BertModel(config)
    model.save_pretrained(path)
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    return path

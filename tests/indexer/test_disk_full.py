"""The disk fills up while `clinqa index build` writes a new version: one readable error line, exit 1, no
partial version left, `current` untouched, and the server keeps serving the good version; once there is
room again the same build succeeds and a reload picks it up.

"Disk full" is the real `clinqa index build` in a subprocess under a file-size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored so a write past it fails with EFBIG instead of killing the process): the writes of the
version's files fail exactly as on a full disk, at a file chosen by the limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from app.main import create_app
from indexer.build import build_index
from indexer.store import activation_history, current_version, resolve_version
from tests.helpers import REPO, uvicorn_thread, write_tiny_corpus

pytestmark = [pytest.mark.unit, pytest.mark.slow]

QUESTION = "What is the target serum urate on allopurinol?"

# The limit is set inside the child, before the CLI module runs as __main__ (what `python -m` does): a
# preexec_fn would run Python in a forked copy of this multi-threaded process (the server thread), which
# the subprocess docs warn can deadlock.
_LIMITED_CLI = (
    "import resource, runpy, signal, sys; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1]))); "
    "sys.argv = ['clinqa', *sys.argv[2:]]; "
    "runpy.run_module('app.cli', run_name='__main__', alter_sys=True)"
)


def build_with_file_size_limit(settings: Settings, limit: int) -> subprocess.CompletedProcess:
    env = os.environ | {
        "CLINQA_INDEX__ROOT": str(settings.index.root),
        "CLINQA_CORPUS__PATHS": f'["{settings.corpus.paths[0]}"]',
        "CLINQA_CORPUS__VOCABULARY": str(settings.corpus.vocabulary),
    }
    return subprocess.run(
        [sys.executable, "-c", _LIMITED_CLI, str(limit), "index", "build"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=REPO,
    )


def file_sizes(version: Path) -> dict[str, int]:
    return {p.relative_to(version).as_posix(): p.stat().st_size for p in version.rglob("*") if p.is_file()}


def test_disk_full_while_writing_a_version_loses_nothing(tmp_path: Path):
    corpus, vocab = write_tiny_corpus(tmp_path)
    settings = Settings(
        index=IndexSettings(root=tmp_path / "indexes"), corpus=CorpusSettings(paths=[corpus], vocabulary=vocab)
    )
    root = settings.index.root
    good = build_index(settings).version
    sizes = file_sizes(root / good)
    written_before_faiss = [sizes["chunks.jsonl"], sizes["documents.json"]]
    written_before_faiss += [n for name, n in sizes.items() if name.startswith("bm25/")]
    assert max(written_before_faiss) < sizes["dense.faiss"] // 2  # so a limit can fall between them
    limits = {
        "chunks.jsonl": sizes["chunks.jsonl"] // 2,  # the first file written
        "dense.faiss": (max(written_before_faiss) + sizes["dense.faiss"]) // 2,  # faiss reports a RuntimeError
    }
    gout = corpus / "gout.md"
    gout.write_text(gout.read_text().replace("below 360 micromol/L", "below 300 micromol/L"))  # a new version

    with uvicorn_thread(create_app(settings)) as url:
        for failing_file, limit in limits.items():
            r = build_with_file_size_limit(settings, limit)
            assert r.returncode == 1, r.stderr
            assert "Traceback" not in r.stderr and not r.stdout
            errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, r.stderr
            assert errors[0].startswith(
                f"error: index build failed, nothing activated: could not write {failing_file} of index version "
            )
            assert errors[0].endswith("File too large") or errors[0].endswith("(File too large)"), errors[0]
            assert "the partial version was removed" in errors[0]
            # Nothing half-written is left, nothing was activated or recorded.
            assert sorted(p.name for p in root.iterdir()) == sorted([good, "current", "history.jsonl"])
            assert current_version(root) == good and activation_history(root) == [good]
            assert file_sizes(root / good) == sizes
            # The server still answers from the good version, and a reload finds nothing new.
            assert httpx.post(f"{url}/v1/admin/reload", timeout=60).json()["status"] == "unchanged"
            body = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60).json()
            assert body["index_version"] == good and "360 micromol/L" in body["answer"]

        # Room again: the same build succeeds and the server reloads it.
        new = build_index(settings).version
        assert resolve_version(root).name == new and activation_history(root) == [good, new]
        r = httpx.post(f"{url}/v1/admin/reload", timeout=60)
        assert r.status_code == 200 and r.json()["index_version"] == new, r.text
        body = httpx.post(f"{url}/v1/ask", json={"question": QUESTION}, timeout=60).json()
        assert body["index_version"] == new and "300 micromol/L" in body["answer"]

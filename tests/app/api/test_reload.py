"""Hot swap: versions change under concurrent requests over a real socket; nothing fails."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.config import CorpusSettings, IndexSettings, Settings
from app.main import create_app
from indexer.build import build_index
from indexer.store import activate
from tests.helpers import uvicorn_thread, write_tiny_corpus

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reload")
    corpus, vocab = write_tiny_corpus(tmp)
    settings = Settings(index=IndexSettings(root=tmp / "idx"), corpus=CorpusSettings(paths=[corpus], vocabulary=vocab))
    v1 = build_index(settings).version
    gout = corpus / "gout.md"
    gout.write_text(gout.read_text().replace("below 360 micromol/L", "below 300 micromol/L"))
    v2 = build_index(settings).version
    return settings, v1, v2


def test_reload_swaps_versions_under_load_with_zero_failures(two_versions):
    settings, v1, v2 = two_versions
    stop = threading.Event()
    seen: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    with uvicorn_thread(create_app(settings)) as url:

        def worker(i: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    if i % 2:
                        r = client.post("/v1/search", json={"query": "serum urate target", "top_k": 3})
                    else:
                        r = client.post("/v1/ask", json={"question": "target serum urate on allopurinol"})
                    version = r.json().get("index_version") if r.status_code == 200 else None
                    with lock:
                        seen.append((r.status_code, version))

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(worker, i) for i in range(4)]
            with httpx.Client(base_url=url, timeout=60) as admin:
                for target in [v1, v2, v1, v2, v1, v2]:
                    activate(settings.index.root, target)
                    r = admin.post("/v1/admin/reload")
                    assert r.status_code == 200, r.text
                    assert r.json()["index_version"] == target and r.json()["status"] == "reloaded"
                    with lock:
                        before = len(seen)
                    while True:  # let some requests land on this version
                        with lock:
                            if len(seen) >= before + 4:
                                break
                stop.set()
            for f in futures:
                f.result()

    assert len(seen) >= 24
    assert [s for s, _ in seen if s != 200] == []
    assert {v for _, v in seen} == {v1, v2}


def test_reload_unchanged_background_and_failure_keeps_serving(two_versions, tmp_path):
    settings, v1, v2 = two_versions
    activate(settings.index.root, v2)
    with uvicorn_thread(create_app(settings)) as url:
        assert httpx.post(f"{url}/v1/admin/reload").json()["status"] == "unchanged"
        assert httpx.post(f"{url}/v1/admin/reload", params={"wait": "false"}).status_code == 202
        # A corrupt new version: the reload fails loudly, the old version keeps answering.
        import shutil

        bad = settings.index.root / "20991231T000000.000Z-corrupt"
        shutil.copytree(settings.index.root / v1, bad)
        (bad / "chunks.jsonl").write_text("{not json\n")
        activate(settings.index.root, bad.name)
        r = httpx.post(f"{url}/v1/admin/reload", timeout=60)
        assert r.status_code == 503 and r.json()["error"]["code"] == "reload_failed"
        assert v2 in r.json()["error"]["message"]
        r = httpx.post(f"{url}/v1/search", json={"query": "gout"}, timeout=30)
        assert r.status_code == 200 and r.json()["index_version"] == v2
        activate(settings.index.root, v2)
        shutil.rmtree(bad)

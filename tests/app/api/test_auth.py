"""Access control, rate limits and request limits, over a real socket (uvicorn in a thread)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.api.auth import ApiKeyAuthenticator
from app.api.keys import KeyFileError, add_key, hash_key, read_keys_file
from app.api.ratelimit import RateLimit, TokenBucketLimiter, retry_after_seconds
from app.config import ApiKeyEntry, ApiSettings, AuthSettings, Settings
from app.main import create_app
from tests.helpers import REPO, clinqa, uvicorn_thread

pytestmark = pytest.mark.unit

USER_KEY, ADMIN_KEY, LIMITED_KEY = "user-key-0123456789abcdef", "admin-key-0123456789abcdef", "limited-key-0123456789"
OPEN_PATHS = ["/healthz", "/readyz", "/openapi.json", "/docs", "/redoc", "/", "/widget/clinqa-answer.js"]


def with_auth(settings: Settings, **auth: object) -> Settings:
    return settings.model_copy(update={"auth": AuthSettings(**auth)})


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["error"]["message"]
    assert body["error"]["code"] == code and body["error"]["field"] == field
    assert response.headers["x-request-id"] == body["request_id"]
    return body


@pytest.fixture(scope="module")
def keyed(tiny_settings, tiny_pipeline):
    """A real server with a user key, an admin key and a key limited to 60/min with a burst of 2."""
    settings = with_auth(
        tiny_settings,
        keys=[
            ApiKeyEntry(name="ward-7", hash=hash_key(USER_KEY)),
            ApiKeyEntry(name="ops", hash=hash_key(ADMIN_KEY), role="admin"),
            ApiKeyEntry(name="batch", hash=hash_key(LIMITED_KEY), rate_limit_per_minute=60, rate_limit_burst=2),
        ],
        rate_limit_burst=1000,  # the other keys never run out during these tests, whatever their order
    )
    with (
        uvicorn_thread(create_app(settings, pipeline=tiny_pipeline)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def test_open_mode_needs_no_key_and_warns_once(tiny_settings, tiny_pipeline, caplog):
    with caplog.at_level(logging.WARNING, logger="app.api.auth"):
        app = create_app(tiny_settings, pipeline=tiny_pipeline)
    warnings = [r for r in caplog.records if r.name == "app.api.auth" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "developer mode" in warnings[0].getMessage()
    with uvicorn_thread(app) as url:
        r = httpx.post(f"{url}/v1/search", json={"query": "gout flare", "top_k": 2}, timeout=60)
        assert r.status_code == 200 and len(r.json()["results"]) == 2
        assert httpx.get(f"{url}/v1/admin/index", timeout=10).status_code == 200


def test_missing_or_unknown_key_is_401(keyed):
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": ""}):
        r = keyed.post("/v1/ask", json={"question": "gout"}, headers=headers)
        assert_error(r, 401, "missing_api_key")
        assert r.headers["www-authenticate"].startswith("Bearer")
    for headers in ({"X-API-Key": "not-a-key"}, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": USER_KEY + "x"}):
        r = keyed.post("/v1/search", json={"query": "gout"}, headers=headers)
        assert_error(r, 401, "invalid_api_key")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(keyed.get("/v1/index"), 401, "missing_api_key")
    assert_error(keyed.get("/v1/concepts", params={"q": "gout"}), 401, "missing_api_key")
    assert_error(keyed.post("/v1/ask/stream", json={"question": "gout"}), 401, "missing_api_key")


def test_user_key_answers_by_header_or_bearer(keyed, tiny_pipeline):
    r = keyed.post(
        "/v1/ask",
        json={"question": "how long is prednisolone given for an asthma attack"},
        headers={"X-API-Key": USER_KEY},
    )
    assert r.status_code == 200 and r.json()["status"] == "answered"
    r = keyed.post("/v1/search", json={"query": "colchicine gout flare", "top_k": 2}, headers={"x-api-key": USER_KEY})
    assert r.status_code == 200 and r.json()["results"][0]["breadcrumb"] == "Gout > Acute flare"
    r = keyed.post("/v1/search", json={"query": "gout"}, headers={"Authorization": f"Bearer {USER_KEY}"})
    assert r.status_code == 200
    r = keyed.get("/v1/concepts", params={"q": "gout"}, headers={"Authorization": f"bearer {USER_KEY}"})
    assert r.status_code == 200 and r.json()
    with keyed.stream("POST", "/v1/ask/stream", json={"question": "gout flare"}, headers={"X-API-Key": USER_KEY}) as s:
        assert s.status_code == 200 and "event: done" in s.read().decode()
    info = keyed.get("/v1/index", headers={"X-API-Key": USER_KEY}).json()
    assert info["version"] == tiny_pipeline.index_version and info["counts"]["documents"] == 3
    assert not {"documents", "libraries", "content_hash"} & set(info)


def test_admin_endpoints_need_an_admin_key(keyed, tiny_pipeline, caplog):
    with caplog.at_level(logging.WARNING, logger="app.api.auth"):
        for method, path in (("POST", "/v1/admin/reload"), ("GET", "/v1/admin/index")):
            r = keyed.request(method, path, headers={"X-API-Key": USER_KEY})
            assert_error(r, 403, "admin_key_required")
            assert_error(keyed.request(method, path), 401, "missing_api_key")
    refused = [r for r in caplog.records if getattr(r, "code", None) == "admin_key_required"]
    assert refused and all(r.api_key_name == "ward-7" for r in refused)
    assert USER_KEY not in caplog.text and ADMIN_KEY not in caplog.text
    r = keyed.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert r.status_code == 200 and r.json()["status"] == "unchanged"
    details = keyed.get("/v1/admin/index", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert details["version"] == tiny_pipeline.index_version and details["content_hash"] and details["libraries"]
    assert sorted(d["doc_id"] for d in details["documents"]) == ["tiny/asthma", "tiny/gout", "tiny/hypertension"]
    assert keyed.post("/v1/search", json={"query": "gout"}, headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_health_page_widget_and_docs_stay_open(keyed):
    for path in OPEN_PATHS:
        assert keyed.get(path).status_code == 200, path


def test_openapi_declares_the_key_on_every_v1_operation_and_only_there(keyed):
    spec = keyed.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key" and schemes["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            secured = bool(op.get("security"))
            assert secured == path.startswith("/v1/"), (method, path)
            if secured:
                assert {"401", "429"} <= set(op["responses"]), (method, path)
            if path.startswith("/v1/admin/"):
                assert "403" in op["responses"], (method, path)


def test_rate_limit_is_per_key_with_retry_after(keyed):
    limited = {"X-API-Key": LIMITED_KEY}
    assert [keyed.get("/v1/index", headers=limited).status_code for _ in range(2)] == [200, 200]
    r = keyed.get("/v1/index", headers=limited)
    assert_error(r, 429, "rate_limited")
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= 2
    assert keyed.get("/v1/index", headers={"X-API-Key": USER_KEY}).status_code == 200  # another key: unaffected
    time.sleep(retry_after)
    assert keyed.get("/v1/index", headers=limited).status_code == 200


def test_keys_file_route(tiny_settings, tiny_pipeline, tmp_path):
    path = tmp_path / "keys.json"
    add_key(path, ApiKeyEntry(name="clinic", hash=hash_key(USER_KEY)))
    add_key(path, ApiKeyEntry(name="root", hash=hash_key(ADMIN_KEY), role="admin"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [e.name for e in read_keys_file(path)] == ["clinic", "root"] and USER_KEY not in path.read_text()
    settings = with_auth(tiny_settings, keys_file=path)
    with uvicorn_thread(create_app(settings, pipeline=tiny_pipeline)) as url:
        assert httpx.get(f"{url}/v1/index", headers={"X-API-Key": USER_KEY}, timeout=10).status_code == 200
        assert httpx.get(f"{url}/v1/admin/index", headers={"X-API-Key": ADMIN_KEY}, timeout=10).status_code == 200
        assert_error(httpx.get(f"{url}/v1/index", timeout=10), 401, "missing_api_key")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "a"}', "malformed"),
        ('[{"name": "a", "hash": "md5:abc"}]', "malformed at 0.hash"),
        (json.dumps([{"name": "a", "hash": hash_key("k1")}, {"name": "a", "hash": hash_key("k2")}]), "appears twice"),
        (None, "not found"),
    ],
)
def test_a_bad_keys_file_stops_start_up_naming_the_file(tiny_settings, tmp_path, content, problem):
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KeyFileError, match=problem) as caught:
        create_app(with_auth(tiny_settings, keys_file=path))
    assert str(path) in str(caught.value)


def test_serve_refuses_a_malformed_keys_file_in_one_line(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("[{]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    r = clinqa("serve", env={**env, "CLINQA_AUTH__KEYS_FILE": str(path), "CLINQA_INDEX__ROOT": str(tmp_path)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and str(path) in lines[0] and "not valid JSON" in lines[0]


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}, **extra}


@pytest.fixture(scope="module")
def cli_keys(tmp_path_factory) -> tuple[Path, str, str]:
    """A keys file written by `clinqa keys create`: a user key by --file, an admin key by the env var."""
    path = tmp_path_factory.mktemp("keys") / "secret" / "keys.json"
    user = clinqa("keys", "create", "ward-7", "--file", str(path), env=_env())
    assert user.returncode == 0, user.stderr
    admin = clinqa("keys", "create", "ops", "--admin", "--rate-limit", "30", env=_env(CLINQA_AUTH__KEYS_FILE=str(path)))
    assert admin.returncode == 0, admin.stderr
    assert "shown only this once" in user.stderr and len(user.stdout.splitlines()) == 1
    return path, user.stdout.strip(), admin.stdout.strip()


def test_cli_keys_create_stores_only_hashes_in_a_private_file(cli_keys):
    path, key, admin_key = cli_keys
    assert len(key) >= 43 and key != admin_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in path.read_text() and admin_key not in path.read_text()
    assert [(e.name, e.role, e.rate_limit_per_minute, e.hash) for e in read_keys_file(path)] == [
        ("ward-7", "user", None, hash_key(key)),
        ("ops", "admin", 30, hash_key(admin_key)),
    ]


def test_cli_keys_create_refuses_a_duplicate_or_bad_name_in_one_line(cli_keys):
    path, _, _ = cli_keys
    before = path.read_text()
    dup = clinqa("keys", "create", "ward-7", "--file", str(path), env=_env())
    assert dup.returncode == 2 and dup.stdout == "" and "Traceback" not in dup.stderr
    assert len(dup.stderr.strip().splitlines()) == 1 and "already exists" in dup.stderr
    bad = clinqa("keys", "create", "two words", "--file", str(path), env=_env())
    assert bad.returncode == 2 and bad.stdout == "" and "invalid key name" in bad.stderr
    nowhere = clinqa("keys", "create", "x", env=_env())
    assert nowhere.returncode == 2 and "--file" in nowhere.stderr
    assert path.read_text() == before


def test_cli_keys_hash_and_list(cli_keys):
    path, key, _ = cli_keys
    hashed = _run_with_stdin(["keys", "hash"], key + "\n")
    assert hashed.returncode == 0 and hashed.stdout.strip() == hash_key(key) == read_keys_file(path)[0].hash
    assert _run_with_stdin(["keys", "hash"], "").returncode == 2
    listed = clinqa("keys", "list", "--file", str(path), env=_env())
    assert listed.returncode == 0 and "ward-7" in listed.stdout and "admin" in listed.stdout
    assert key not in listed.stdout and "sha256:" not in listed.stdout
    from_env = json.dumps([{"name": "env-key", "hash": hash_key("k"), "role": "admin"}])
    listed = clinqa("keys", "list", env=_env(CLINQA_AUTH__KEYS=from_env))
    assert listed.returncode == 0 and "env-key" in listed.stdout


def test_cli_created_keys_work_on_the_server(cli_keys, tiny_settings, tiny_pipeline):
    path, key, admin_key = cli_keys
    settings = with_auth(tiny_settings, keys_file=path)
    with uvicorn_thread(create_app(settings, pipeline=tiny_pipeline)) as url:
        assert httpx.get(f"{url}/v1/index", headers={"X-API-Key": key}, timeout=10).status_code == 200
        assert httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": admin_key}, timeout=30).status_code == 200
        assert httpx.post(f"{url}/v1/admin/reload", headers={"X-API-Key": key}, timeout=30).status_code == 403


def _run_with_stdin(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True, text=True, env=_env(), cwd=REPO
    )


def test_keys_from_the_environment(monkeypatch):
    entry = {"name": "env-key", "hash": hash_key("k"), "role": "admin", "rate_limit_burst": 5}
    monkeypatch.setenv("CLINQA_AUTH__KEYS", json.dumps([entry]))
    settings = Settings()
    assert settings.auth.keys == [ApiKeyEntry(**entry)]
    auth = ApiKeyAuthenticator.from_settings(settings.auth)
    assert auth.enabled and auth.identify("k").name == "env-key"
    assert auth.limit_of(auth.identify("k")) == RateLimit(settings.auth.rate_limit_per_minute, 5)


def test_token_bucket_refills_at_the_rate_per_key():
    now = [100.0]
    limiter = TokenBucketLimiter(clock=lambda: now[0])
    limit = RateLimit(per_minute=30, burst=3)  # one token every 2 s
    assert [limiter.acquire("a", limit) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a", limit) == pytest.approx(2.0)
    assert limiter.acquire("b", limit) == 0.0
    now[0] += 1.0
    assert limiter.acquire("a", limit) == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.acquire("a", limit) == 0.0
    now[0] += 3600
    assert [limiter.acquire("a", limit) for _ in range(4)][-1] > 0  # refills up to the burst, not beyond
    assert [retry_after_seconds(w) for w in (0.01, 1.0, 1.2, 59.9)] == [1, 1, 2, 60]
    with pytest.raises(ValueError, match="must be >= 1"):
        RateLimit(per_minute=0, burst=1)


def test_request_limits_follow_the_settings(tiny_settings, tiny_pipeline):
    """Body size (413, declared or streamed), question and query length, top_k (422 naming the field)."""
    api = ApiSettings(max_body_bytes=2048, max_question_chars=50, max_top_k=5)
    settings = tiny_settings.model_copy(update={"api": api})
    with (
        uvicorn_thread(create_app(settings, pipeline=tiny_pipeline)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        assert_error(client.post("/v1/ask", json={"question": "x" * 3000}), 413, "payload_too_large")

        def chunks():  # no Content-Length: the server counts what arrives
            for _ in range(5):
                yield b"x" * 1000

        assert_error(client.post("/v1/ask", content=chunks()), 413, "payload_too_large")
        body = assert_error(client.post("/v1/ask", json={"question": "g" * 51}), 422, "validation_error", "question")
        assert "50" in body["error"]["message"]
        assert_error(client.post("/v1/ask/stream", json={"question": "g" * 51}), 422, "validation_error", "question")
        assert_error(client.post("/v1/search", json={"query": "g" * 51}), 422, "validation_error", "query")
        assert_error(client.post("/v1/search", json={"query": "gout", "top_k": 6}), 422, "validation_error", "top_k")
        assert client.post("/v1/search", json={"query": "gout", "top_k": 5}).status_code == 200
        assert client.post("/v1/ask", json={"question": "g" * 50}).status_code == 200

"""Privacy: question text never reaches the logs of a real `clinqa serve` process (INFO and DEBUG, JSON and
plain), it goes to the opt-in audit log only, identifiers are redacted before the external model, and
the audit log is private (0600) and rotated."""

from __future__ import annotations

import io
import json
import logging
import os
import stat

import httpx
import pytest

from app.audit import AuditRecord
from app.config import AuditSettings, LogSettings, Settings
from app.logs import _QUIET, configure_logging, question_fingerprint
from app.main import create_app
from tests.helpers import clinqa_server, uvicorn_thread
from tests.openai_double import openai_double

pytestmark = pytest.mark.unit

QUESTION = "Patient John Smithson MRN 00482913 born 03/14/1961: what is the first-line drug for hypertension?"
SECRETS = ("Smithson", "00482913", "03/14/1961", QUESTION)


@pytest.mark.slow
@pytest.mark.parametrize(("level", "json_format"), [("DEBUG", "true"), ("INFO", "false")])
def test_questions_reach_the_audit_log_and_never_the_logs(tiny_settings, tmp_path, level: str, json_format: str):
    audit = tmp_path / "audit" / "questions.jsonl"
    with openai_double() as llm:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")} | {
            "CLINQA_INDEX__ROOT": str(tiny_settings.index.root),
            "CLINQA_LOG__LEVEL": level,
            "CLINQA_LOG__JSON_FORMAT": json_format,
            "CLINQA_AUDIT__PATH": str(audit),
            # the question goes to an external model over HTTP (httpx in the server process, at DEBUG too)
            "CLINQA_GENERATE__BACKEND": "openai",
            "CLINQA_GENERATE__BASE_URL": llm.url,
            "CLINQA_GENERATE__MODEL": "double",
            # so that the gate lets this question through to the model
            "CLINQA_ABSTAIN__MIN_QUERY_COVERAGE": "0",
            "CLINQA_ABSTAIN__MIN_DENSE_SCORE": "-1",
        }
        output = tmp_path / "server.log"
        with clinqa_server(env, output) as url, httpx.Client(base_url=url, timeout=60) as client:
            ask = client.post("/v1/ask", json={"question": QUESTION}, headers={"X-Request-ID": "privacy-ask"})
            assert ask.status_code == 200 and ask.json()["generation"]["redacted"] == ["mrn", "dob"]
            assert client.post("/v1/search", json={"query": QUESTION}).status_code == 200
            with client.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as stream:
                assert stream.status_code == 200 and "event: done" in stream.read().decode()
            invalid = client.post("/v1/ask", json={"question": QUESTION, "patient": "John Smithson"})
            assert invalid.status_code == 422
        logs = output.read_text()
    assert "question answered" in logs and "privacy-ask" in logs, logs
    assert question_fingerprint(QUESTION)["question_sha256"] in logs
    for secret in SECRETS:
        assert secret not in logs, f"{secret!r} leaked into the {level} log"
    # the external model saw placeholders, not the record number or date of birth
    prompts = [p for p in llm.prompts() if "hypertension?" in p]
    assert len(prompts) == 2 and all("[MRN]" in p and "00482913" not in p and "03/14/1961" not in p for p in prompts)
    records = [AuditRecord.model_validate_json(line) for line in audit.read_text().splitlines()]
    assert [r.endpoint for r in records] == ["/v1/ask", "/v1/search", "/v1/ask/stream"]
    assert all(r.question == QUESTION for r in records) and records[0].request_id == "privacy-ask"
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600


def test_audit_log_records_who_asked_what_rotates_and_stays_private(tiny_settings, tiny_pipeline, tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)  # an existing file is narrowed to 0600 when opened
    settings = tiny_settings.model_copy(update={"audit": AuditSettings(path=path, max_bytes=1024, backups=2)})
    question = "how long is prednisolone given for an asthma attack"
    with uvicorn_thread(create_app(settings, pipeline=tiny_pipeline)) as url, httpx.Client(base_url=url) as c:
        for i in range(8):  # about two records per file: several rollovers
            c.post("/v1/ask", json={"question": f"{question} {i}"}, timeout=60)
        answer = c.post("/v1/ask", json={"question": question}, timeout=60).json()
        with c.stream("POST", "/v1/ask/stream", json={"question": question}, timeout=60) as r:
            r.read()
        assert c.post("/v1/ask", json={"question": ""}).status_code == 422  # invalid: not audited
    files = sorted(tmp_path.glob("audit.jsonl*"))
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    records = [AuditRecord.model_validate_json(line) for f in reversed(files) for line in f.read_text().splitlines()]
    assert 3 <= len(records) < 10  # the oldest were rotated away
    asked, streamed = records[-2:]
    assert (asked.endpoint, asked.question, asked.request_id) == ("/v1/ask", question, answer["request_id"])
    assert (asked.status, asked.verified) == (answer["status"], answer["verified"]) == ("answered", True)
    assert [s.chunk_id for s in asked.sources] == list(dict.fromkeys(c["chunk_id"] for c in answer["citations"]))
    assert asked.sources[0].title == "Asthma in adults" and asked.sources[0].doc_id
    assert asked.client == "127.0.0.1" and asked.key is None and asked.total_ms and asked.index_version
    assert (streamed.endpoint, streamed.question, streamed.sources) == ("/v1/ask/stream", question, asked.sources)


def test_search_is_audited_with_its_result_ids(tiny_settings, tiny_pipeline, tmp_path):
    path = tmp_path / "audit.jsonl"
    settings = tiny_settings.model_copy(update={"audit": AuditSettings(path=path)})
    with uvicorn_thread(create_app(settings, pipeline=tiny_pipeline)) as url:
        body = httpx.post(f"{url}/v1/search", json={"query": "gout flare", "top_k": 3}, timeout=60).json()
    (record,) = [AuditRecord.model_validate_json(line) for line in path.read_text().splitlines()]
    assert (record.endpoint, record.question, record.status, record.verified) == (
        "/v1/search",
        "gout flare",
        "searched",
        None,
    )
    assert [s.chunk_id for s in record.sources] == [r["chunk_id"] for r in body["results"]]
    assert record.request_id == body["request_id"] and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_log_line_of_a_request_carries_its_id(tiny_settings, tiny_pipeline):
    """Lines logged by any code while a request is served (here a sync route, run in the thread pool) get
    the request id without passing it, and the logs say a question's fingerprint, not its text."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers), {n: logging.getLogger(n).level for n in _QUIET}
    stream = io.StringIO()
    app = create_app(tiny_settings, pipeline=tiny_pipeline)

    @app.get("/probe")
    def probe() -> dict:
        logging.getLogger("somewhere.else").debug("inside the request")
        return {}

    try:
        configure_logging(LogSettings(level="DEBUG", json_format=True), stream=stream)
        with uvicorn_thread(app) as url:
            httpx.get(f"{url}/probe", headers={"X-Request-ID": "probe-1"})
            httpx.post(
                f"{url}/v1/search", json={"query": "gout flare"}, headers={"X-Request-ID": "probe-2"}, timeout=60
            )
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inside = next(line for line in lines if line["message"] == "inside the request")
    assert inside["request_id"] == "probe-1"
    search = next(line for line in lines if line["message"] == "search")
    assert search["request_id"] == "probe-2" and search["question_chars"] == len("gout flare")
    assert search["question_sha256"] == question_fingerprint("gout flare")["question_sha256"]
    assert "gout flare" not in stream.getvalue()


def test_fingerprint_is_short_stable_and_says_nothing_readable():
    fp = question_fingerprint(QUESTION)
    assert fp == question_fingerprint(QUESTION) and fp["question_chars"] == len(QUESTION)
    assert len(str(fp["question_sha256"])) == 16 and fp != question_fingerprint(QUESTION + " ")


def test_audit_log_is_off_by_default():
    assert Settings().audit.path is None

"""Concept lookup over HTTP and in the CLI, on the tiny index."""

import json
import os

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers import clinqa

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def client(tiny_settings, tiny_pipeline):
    with TestClient(create_app(tiny_settings, pipeline=tiny_pipeline)) as c:
        yield c


def test_lookup_by_abbreviation_synonym_and_prefix(client):
    assert [h["id"] for h in client.get("/v1/concepts", params={"q": "HTN"}).json()] == ["C0020538"]
    hit = client.get("/v1/concepts", params={"q": "gouty arthritis"}).json()[0]
    assert hit["id"] == "C0018099" and hit["via"] == "synonym" and hit["chunks"] >= 1
    assert client.get("/v1/concepts", params={"q": "allopur"}).json()[0]["name"] == "Allopurinol"
    assert client.get("/v1/concepts", params={"q": "zz"}).json() == []
    r = client.get("/v1/concepts", params={"q": ""})
    assert r.status_code == 422 and r.json()["error"]["field"] == "q"


def test_detail_neighbours_and_chunks(client):
    gout = client.get("/v1/concepts/C0018099").json()
    assert gout["name"] == "Gout" and "gouty arthritis" in gout["synonyms"]
    assert {"id": "C0002144", "name": "Allopurinol", "relation": "may_treat", "direction": "in"} in gout["neighbours"]
    chunks = client.get("/v1/concepts/C0002144/chunks").json()
    assert chunks["total"] >= 1 and chunks["chunks"][0]["breadcrumb"] == "Gout > Urate-lowering therapy"
    r = client.get("/v1/concepts/C9999999")
    assert r.status_code == 404 and r.json()["error"]["field"] == "concept_id"
    assert client.get("/v1/concepts/C9999999/chunks").status_code == 404


def test_cli_concepts_json(tiny_settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINQA_")}
    env["CLINQA_INDEX__ROOT"] = str(tiny_settings.index.root)
    r = clinqa("concepts", "--json", "Zyloprim", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["id"] == "C0002144"
    r = clinqa("concepts", "qqqq", env=env)
    assert r.returncode == 1 and "no concept matches" in r.stderr

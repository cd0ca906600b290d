"""Evaluation collections read from files the tests write."""

import pytest

from app.eval.datasets import medquad

pytestmark = pytest.mark.unit

XML = """<?xml version="1.0" encoding="UTF-8"?>
<Document id="0000013" source="CancerGov"><Focus>Gout</Focus><QAPairs>
<QAPair pid="1"><Question qid="0000013-1" qtype="information">What is gout?</Question>
<Answer>Gout is an inflammatory arthritis caused by urate crystals.</Answer></QAPair>
<QAPair pid="2"><Question qid="0000013-1" qtype="treatment">How is gout treated?</Question>
<Answer>Colchicine or an NSAID treats a gout flare.</Answer></QAPair>
<QAPair pid="3"><Question qid="0000013-3" qtype="causes">What causes gout?</Question>
<Answer></Answer></QAPair>
</QAPairs></Document>
"""


def test_medquad_keeps_pairs_that_reuse_a_qid_apart(tmp_path):
    folder = tmp_path / "medquad" / "1_CancerGov_QA"
    folder.mkdir(parents=True)
    (folder / "0000013_1.xml").write_text(XML)
    both = [medquad(tmp_path, split) for split in ("test", "train")]
    docs = both[0].documents
    assert [d["id"] for d in docs] == ["1_CancerGov_QA-0000013-1", "1_CancerGov_QA-0000013-1~2"]
    assert docs[1]["text"].startswith("Colchicine") and docs[0]["title"] == "Gout"
    queries = {**both[0].queries, **both[1].queries}  # the file is on one side of the split
    assert queries["1_CancerGov_QA-0000013-1~2"] == "How is gout treated?" and len(queries) == 2

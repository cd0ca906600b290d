"""bm25s (what clinqa serves) against rank-bm25 (the reference implementation), same analyzer."""

import math

import bm25s
import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from indexer.analysis import Analyzer
from tests.helpers import TINY_DOCS

pytestmark = pytest.mark.unit

CORPUS = [p.strip() for doc in TINY_DOCS.values() for p in doc.split("\n\n") if len(p.split()) > 3] + [
    "Metformin is the first-line drug for type 2 diabetes in adults.",
    "Statins reduce cardiovascular risk; atorvastatin 20 mg is used for primary prevention.",
    "Amoxicillin is the first-choice antibiotic for community-acquired pneumonia of low severity.",
    "Apixaban or rivaroxaban is offered for atrial fibrillation with a CHA2DS2-VASc score of 2 or more.",
    "Levothyroxine is started at 1.6 micrograms per kilogram for primary hypothyroidism.",
    "Colchicine or an NSAID treats an acute gout flare; allopurinol lowers serum urate.",
    "Salbutamol relieves symptoms; inhaled corticosteroids control asthma inflammation.",
    "Varenicline with behavioural support helps adults stop smoking.",
    "Oseltamivir 75 mg twice daily for 5 days treats influenza in adults.",
    "Nitrofurantoin for 3 days treats uncomplicated cystitis in women.",
]
QUERIES = [
    "first-line drug for hypertension in adults",
    "allopurinol serum urate",
    "antibiotic for pneumonia",
    "asthma inhaled corticosteroids attack",
    "dose of oseltamivir for influenza",
    "atrial fibrillation anticoagulation score",
]


class LuceneIdfBM25(BM25Okapi):
    """rank-bm25's Okapi scoring with Lucene's always-positive IDF: log(1 + (N - df + 0.5) / (df + 0.5))."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


def top10(scores):
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))
    return [int(i) for i in order[:10] if scores[i] > 0]


@pytest.mark.parametrize(("method", "reference"), [("robertson", BM25Okapi), ("lucene", LuceneIdfBM25)])
def test_same_scores_and_top10(method, reference):
    analyzer = Analyzer()
    tokens = analyzer.tokens_many(CORPUS)
    ours = bm25s.BM25(method=method, k1=1.5, b=0.75)
    ours.index(tokens, show_progress=False)
    ref = reference(tokens, k1=1.5, b=0.75)
    for query in QUERIES:
        q = [t for t in analyzer.tokens(query) if t in ours.vocab_dict]
        a = np.asarray(ours.get_scores(q), dtype=np.float64)
        b = np.asarray(ref.get_scores(q), dtype=np.float64) / (1.5 + 1)  # rank-bm25 keeps the (k1 + 1) factor
        if method == "robertson":
            # rank-bm25 floors negative IDFs (terms in over half the documents) at epsilon * mean IDF.
            assert all(ref.idf[t] > 0 for t in q), "fixture must avoid negative Robertson IDFs"
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert top10(a) == top10(b) and top10(a)

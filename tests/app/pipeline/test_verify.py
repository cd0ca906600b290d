import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.config import VerifySettings
from app.pipeline.types import Chunk, Draft, DraftSentence, ScoredChunk, SpanRef
from app.pipeline.verify import CitationVerifier
from indexer.analysis import Analyzer, split_sentences

pytestmark = pytest.mark.unit

TEXT = (
    "Amlodipine 5 mg once daily is step 1 for adults aged 55 and over. "
    "Do not combine an ACE inhibitor with an ARB. Review blood pressure every 4 weeks."
)
CHUNK = Chunk(
    id="c1",
    doc_id="d",
    ordinal=0,
    section_path=("H",),
    breadcrumb="H",
    text=TEXT,
    start=10,
    end=10 + len(TEXT),
    n_tokens=40,
)
EVIDENCE = [ScoredChunk(chunk=CHUNK, row=0, score=1.0)]


def verify(text: str, start: int = 0, end: int = 0, chunk_id: str = "c1"):
    draft = Draft(sentences=(DraftSentence(text=text, cites=(SpanRef(chunk_id=chunk_id, start=start, end=end),)),))
    return CitationVerifier(VerifySettings(), Analyzer()).run(draft, EVIDENCE)[0]


def test_verbatim_quote_at_its_offsets_is_supported():
    s = "Review blood pressure every 4 weeks."
    start = TEXT.index(s)
    checked = verify(s, start, start + len(s))
    assert checked.support == "supported" and checked.cites[0].start == start


def test_verbatim_quote_at_wrong_offsets_is_supported_with_corrected_span():
    s = "Review blood pressure every 4 weeks."
    checked = verify(s, 0, 5)
    assert checked.support == "supported"
    assert TEXT[checked.cites[0].start : checked.cites[0].end] == s


def test_changed_dose_is_unsupported():
    checked = verify("Amlodipine 10 mg once daily is step 1 for adults aged 55 and over.")
    assert checked.support == "unsupported" and "10" in checked.reason


def test_flipped_negation_is_unsupported():
    assert verify("Combine an ACE inhibitor with an ARB.").support == "unsupported"
    assert verify("Do not review blood pressure every 4 weeks.").support == "unsupported"


def test_citation_outside_the_evidence_is_rejected():
    checked = verify("Review blood pressure every 4 weeks.", chunk_id="other")
    assert checked.support == "unsupported" and "not in the evidence" in checked.reason


def test_sentence_without_citation_is_unsupported():
    out = CitationVerifier(VerifySettings(), Analyzer()).run(Draft(sentences=(DraftSentence(text="x", cites=()),)), [])
    assert out[0].support == "unsupported"


def test_paraphrase_with_same_terms_is_partial():
    assert verify("For adults aged 55 and over, step 1 is amlodipine 5 mg once daily.").support == "partial"


def test_invalid_settings_and_empty_draft():
    with pytest.raises(ValueError, match="min_partial_overlap"):
        CitationVerifier(VerifySettings(), Analyzer(), min_partial_overlap=0)
    assert CitationVerifier(VerifySettings(), Analyzer()).run(Draft(sentences=()), EVIDENCE) == []


SENTENCES = [TEXT[s.start : s.end] for s in split_sentences(TEXT)]


@given(st.sampled_from(SENTENCES))
def test_every_sentence_of_the_chunk_verifies(sentence):
    start = TEXT.index(sentence)
    assert verify(sentence, start, start + len(sentence)).support == "supported"


@given(st.sampled_from(SENTENCES), st.integers(0, 9))
def test_changing_any_number_is_never_supported(sentence, digit):
    numbers = list(re.finditer(r"\d+", sentence))
    assume(numbers)
    m = numbers[0]
    changed = sentence[: m.start()] + str(int(m.group()) * 10 + digit) + sentence[m.end() :]
    assert verify(changed).support == "unsupported"

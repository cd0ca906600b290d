import json
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.config import VerifySettings
from app.pipeline.types import Chunk, Draft, DraftSentence, ScoredChunk, SpanRef
from app.pipeline.verify import CitationVerifier
from indexer.analysis import Analyzer, split_sentences
from knowledge.linker import ConceptLinker
from knowledge.vocabulary import load_vocabulary
from tests.helpers import TINY_VOCABULARY

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


def test_reordered_paraphrase_with_every_term_is_supported_without_an_encoder():
    checked = verify("For adults aged 55 and over, step 1 is amlodipine 5 mg once daily.")
    assert checked.support == "supported" and checked.reason == "paraphrase of the cited passage"
    assert TEXT[checked.cites[0].start : checked.cites[0].end].startswith("Amlodipine 5 mg")


def test_paraphrase_missing_some_terms_is_partial_without_an_encoder():
    assert verify("Amlodipine 5 mg once daily is step 1 for adults aged 55.").support == "supported"
    assert verify("Amlodipine 5 mg once daily is used for adults aged 55 and over.").support == "partial"


def test_invalid_settings_and_empty_draft():
    with pytest.raises(ValueError):
        VerifySettings(min_overlap=0)
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


# --- concepts, similarity, several citations, NLI ------------------------------------------------------------

GOUT = (
    "Allopurinol is started at 100 mg daily and raised every 4 weeks until serum urate is below 360 µmol/l. "
    "Colchicine 500 micrograms twice daily treats an acute flare. Do not stop allopurinol during a flare."
)
GOUT_CHUNK = Chunk(
    id="g1",
    doc_id="gout",
    ordinal=0,
    section_path=("Gout", "Urate lowering"),
    breadcrumb="Gout > Urate lowering",
    text=GOUT,
    start=0,
    end=len(GOUT),
    n_tokens=60,
)


@pytest.fixture(scope="module")
def linker(tmp_path_factory) -> ConceptLinker:
    path = tmp_path_factory.mktemp("vocab") / "vocabulary.yaml"
    path.write_text(TINY_VOCABULARY, encoding="utf-8")
    return ConceptLinker(load_vocabulary(path).concepts)


@pytest.fixture(scope="module")
def encoder():
    from app.config import EncoderSettings
    from indexer.dense import load_encoder

    return load_encoder(EncoderSettings())


def _embedder(model):
    return lambda texts: model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def check(text: str, *chunks: Chunk, linker=None, embed=None, settings=None, nli=None):
    evidence = [ScoredChunk(chunk=c, row=i, score=1.0) for i, c in enumerate(chunks or (GOUT_CHUNK,))]
    cites = tuple(SpanRef(chunk_id=c.chunk.id, start=0, end=len(c.chunk.text)) for c in evidence)
    verifier = CitationVerifier(settings or VerifySettings(), Analyzer(), linker, embed=embed)
    verifier.nli = nli
    return verifier.run(Draft(sentences=(DraftSentence(text=text, cites=cites),)), evidence)[0]


def test_a_swapped_drug_is_caught_through_the_knowledge_graph(linker):
    checked = check("Colchicine is started at 100 mg daily and raised every 4 weeks.", linker=linker)
    assert checked.support == "unsupported" and "C0009262" in checked.reason  # in the chunk, not in this sentence
    checked = check("Allopurinol 500 micrograms twice daily treats an acute flare.", linker=linker)
    assert checked.support == "unsupported" and "C0002144" in checked.reason


def test_a_synonym_of_a_cited_concept_is_not_a_swap(linker):
    checked = check("Zyloprim is started at 100 mg daily and raised every 4 weeks.", linker=linker)
    assert checked.support != "unsupported", checked.reason


def test_frequency_words_must_match():
    checked = check("Colchicine 500 micrograms once daily treats an acute flare.")
    assert checked.support == "unsupported" and "once" in checked.reason


def test_citation_span_points_at_the_closest_sentence():
    checked = check("An acute flare is treated with colchicine 500 micrograms twice daily.")
    span = checked.cites[0]
    assert GOUT[span.start : span.end] == "Colchicine 500 micrograms twice daily treats an acute flare."


def test_similarity_decides_between_supported_and_partial(encoder):
    embed = _embedder(encoder)
    close = check("An acute flare is treated with colchicine 500 micrograms twice daily.", embed=embed)
    assert close.support == "supported" and close.similarity >= 0.75
    strict = check(
        "An acute flare is treated with colchicine 500 micrograms twice daily.",
        embed=embed,
        settings=VerifySettings(min_similarity=0.999),
    )
    assert strict.support == "partial" and "similarity" in strict.reason


def test_a_sentence_joining_two_cited_chunks_is_supported_by_both_together():
    other = GOUT_CHUNK.model_copy(update={"id": "g2", "text": "Febuxostat is a second-line option in gout."})
    text = "Colchicine 500 micrograms twice daily treats an acute flare and febuxostat is a second-line option."
    alone = check(text, GOUT_CHUNK)
    assert alone.support != "supported"
    joint = check(text, GOUT_CHUNK, other)
    assert joint.support == "supported" and {c.chunk_id for c in joint.cites} == {"g1", "g2"}


def test_the_wrong_chunk_is_unsupported():
    other = GOUT_CHUNK.model_copy(update={"id": "g2", "text": "Febuxostat is a second-line option in gout."})
    checked = check("Do not stop allopurinol during a flare.", other)
    assert checked.support == "unsupported" and checked.cites[0].chunk_id == "g2"


def test_an_nli_model_must_find_the_paraphrase_entailed(tmp_path):
    from app.pipeline.verify import NliScorer
    from tests.helpers import write_tiny_bert

    path = write_tiny_bert(tmp_path / "nli", num_labels=3)
    config = json.loads((path / "config.json").read_text())
    config["id2label"] = {"0": "contradiction", "1": "entailment", "2": "neutral"}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (path / "config.json").write_text(json.dumps(config))
    nli = NliScorer(str(path))
    probability = nli.entailment_probability([("Gout is treated.", "Gout is treated.")])[0]
    assert 0.0 < probability < 1.0
    paraphrase = "Twice daily colchicine 500 micrograms treats an acute flare."
    never = check(paraphrase, nli=nli, settings=VerifySettings(nli_min_entailment=1.0))
    assert never.support == "partial" and "NLI" in never.reason
    always = check(paraphrase, nli=nli, settings=VerifySettings(nli_min_entailment=0.0))
    assert always.support == "supported"
    assert check("Do not stop allopurinol during a flare.", nli=nli).support == "supported"  # verbatim: no NLI


def test_an_nli_model_without_an_entailment_label_is_refused(tmp_path):
    from app.pipeline.verify import NliScorer
    from tests.helpers import write_tiny_bert

    path = write_tiny_bert(tmp_path / "ce", num_labels=1)
    with pytest.raises(ValueError, match="entailment"):
        NliScorer(str(path))


WORDS = st.sampled_from(["not", "no", "never", "without"])


@given(st.sampled_from([GOUT[s.start : s.end] for s in split_sentences(GOUT)]), WORDS, st.integers(1, 6))
def test_adding_a_negation_anywhere_is_never_supported(sentence, cue, position):
    words = sentence.split()
    position = min(position, len(words) - 1)
    negated = " ".join([*words[:position], cue, *words[position:]])
    assert check(negated).support == "unsupported"


def test_an_opposite_word_reverses_the_claim():
    chunk = GOUT_CHUNK.model_copy(update={"id": "p", "text": "Tumours that are p16 positive respond to radiotherapy."})
    checked = check("Tumours that are p16 negative respond to radiotherapy.", chunk)
    assert checked.support == "unsupported" and "'negative' in the sentence, 'positive'" in checked.reason
    assert check("Tumours that are p16 positive respond to radiotherapy.", chunk).support == "supported"

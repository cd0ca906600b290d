"""Identifier redaction: examples per kind, Hypothesis properties, and the external model receiving the
redacted question over a real socket."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.config import GenerateSettings, PrivacySettings
from app.pipeline.llm import load_llm_generator
from app.pipeline.redact import IdentifierRedactor
from app.pipeline.terms import QueryTerms
from app.pipeline.types import Chunk, Query, ScoredChunk
from tests.openai_double import openai_double

pytestmark = pytest.mark.unit

REDACTOR = IdentifierRedactor(PrivacySettings())
QUESTION = "Patient John Smithson MRN 00482913 born 03/14/1961: what is the first-line drug for hypertension?"


def test_default_construction_and_empty_input():
    assert REDACTOR.kinds == ("mrn", "email", "ssn", "dob", "phone")
    assert REDACTOR.run("").text == "" and REDACTOR.run("").kinds == ()
    nothing = IdentifierRedactor(PrivacySettings(redact_patterns=[]))
    assert nothing.run(QUESTION).text == QUESTION


def test_unknown_kinds_are_refused():
    with pytest.raises(ValidationError, match="redact_patterns"):
        PrivacySettings(redact_patterns=["name"])


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        (
            QUESTION,
            "Patient John Smithson [MRN] born [DOB]: what is the first-line drug for hypertension?",
            ("mrn", "dob"),
        ),
        ("hospital no. A1234567 and NHS number 943 476 5919", "[MRN] and [MRN]", ("mrn",)),
        ("record 004829130 seen", "record [MRN] seen", ("mrn",)),
        ("call (555) 123-4567 or +44 20 7946 0958 or 07700 900123", "call [PHONE] or [PHONE] or [PHONE]", ("phone",)),
        ("dob 1961-03-14, 14 March 1961 or March 14th, 1961", "dob [DOB], [DOB] or [DOB]", ("dob",)),
        ("mail j.smith+gp@nhs.example.org now", "mail [EMAIL] now", ("email",)),
        ("SSN 123-45-6789.", "SSN [SSN].", ("ssn",)),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder(text: str, expected: str, kinds: tuple[str, ...]):
    redaction = REDACTOR.run(text)
    assert redaction.text == expected and redaction.kinds == kinds


def test_only_the_chosen_kinds_are_redacted():
    redaction = IdentifierRedactor(PrivacySettings(redact_patterns=["dob"])).run(QUESTION)
    assert "00482913" in redaction.text and "03/14/1961" not in redaction.text and redaction.kinds == ("dob",)


DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
SAFE = st.text(st.characters(categories=["L", "Zs"]) | st.sampled_from(list(",;:?!()'\"")), max_size=40)
IDENTIFIERS = st.one_of(
    st.from_regex(r"MRN:? [0-9]{6,10}", fullmatch=True),
    st.from_regex(r"[0-9]{7,12}", fullmatch=True),
    st.from_regex(r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}|\+44 [0-9]{2} [0-9]{4} [0-9]{4}|0[0-9]{4} [0-9]{6}", fullmatch=True),
    DATES.map(lambda d: d.strftime("%m/%d/%Y")),
    DATES.map(lambda d: d.isoformat()),
    DATES.map(lambda d: d.strftime("%d %B %Y")),
    st.from_regex(r"[a-z][a-z0-9._]{0,10}@[a-z]{2,10}\.(org|com|co\.uk)", fullmatch=True),
    st.from_regex(r"[0-9]{3}-[0-9]{2}-[0-9]{4}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(before=SAFE, identifier=IDENTIFIERS, after=SAFE)
def test_redacted_text_never_contains_the_identifier(before: str, identifier: str, after: str):
    redaction = REDACTOR.run(f"{before} {identifier} {after}")
    assert identifier not in redaction.text and redaction.kinds
    assert not any(c.isdigit() for c in redaction.text)  # nothing of it is left: the rest has no digits


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_characters="@", exclude_categories=["Nd", "No", "Cs"]), max_size=200))
def test_text_without_digits_or_at_signs_is_unchanged(text: str):
    assert REDACTOR.run(text).text == text


QUANTITY = st.one_of(
    st.builds("{} mg".format, st.integers(1, 99_999)),
    st.builds("{}.{} mg".format, st.integers(0, 999), st.integers(0, 99)),
    st.builds("{}/{} mmHg".format, st.integers(60, 250), st.integers(30, 150)),
    st.builds("{}-{} mg".format, st.integers(0, 9_999), st.integers(0, 9_999)),
    st.builds("{}.{}-{} mg".format, st.integers(0, 99), st.integers(0, 9), st.integers(0, 99)),
    st.builds("{} micromol/L".format, st.integers(1, 999_999)),
    st.builds("{}%".format, st.integers(0, 100)),
)
WORDS = st.sampled_from(["ramipril", "daily", "for", "adults", "aged", "over", "target", "below", "dose", "and"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDS, QUANTITY), min_size=1, max_size=8))
def test_clinical_quantities_are_left_alone(parts: list[tuple[str, str]]):
    text = " ".join(f"{word} {quantity}" for word, quantity in parts)
    redaction = REDACTOR.run(text)
    assert redaction.text == text and redaction.kinds == ()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120) | st.builds(" ".join, st.lists(SAFE | IDENTIFIERS | QUANTITY, max_size=8)))
def test_redaction_is_idempotent(text: str):
    once = REDACTOR.run(text)
    twice = REDACTOR.run(once.text)
    assert twice.text == once.text and twice.kinds == ()


def _evidence() -> list[ScoredChunk]:
    text = "An ACE inhibitor such as ramipril 2.5 mg once daily is step 1 for adults under 55."
    chunk = Chunk(
        id="chunk-0",
        doc_id="doc-0",
        ordinal=0,
        section_path=("Hypertension", "Treatment"),
        breadcrumb="Hypertension > Treatment",
        text=text,
        start=0,
        end=len(text),
        n_tokens=len(text.split()),
    )
    return [ScoredChunk(chunk=chunk, row=0, score=1.0)]


def _openai(url: str) -> GenerateSettings:
    return GenerateSettings(backend="openai", base_url=url, model="double", retries=0)


def test_the_external_model_receives_the_redacted_question():
    query = Query(original=QUESTION, rewritten=QUESTION, bm25_text=QUESTION)
    terms = QueryTerms(weights={}, concept_tokens={}, surface={})
    with openai_double() as server:
        generator = load_llm_generator(_openai(server.url), PrivacySettings())
        draft = generator.run(query, terms, _evidence())
        streamed = list(generator.stream(query, terms, _evidence()))[-1]
        unredacted = load_llm_generator(_openai(server.url), PrivacySettings(redact_external_llm=False))
        plain = unredacted.run(query, terms, _evidence())
    first, second, third = server.prompts()
    for prompt in (first, second):
        assert "[MRN]" in prompt and "[DOB]" in prompt and "John Smithson" in prompt  # names are not recognised
        assert "00482913" not in prompt and "03/14/1961" not in prompt
    assert draft.redacted == streamed.redacted == ("mrn", "dob") and draft.sentences
    assert QUESTION in third and plain.redacted == ()

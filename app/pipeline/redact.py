"""Redaction of obvious identifiers in a question before it leaves the process for an external model.

Recognised: record numbers (`MRN 00482913`, `medical record number: A1234567`, `NHS number 943 476 5919`,
or any bare run of 7 to 12 digits), phone numbers (10 to 15 digits with the usual separators, or a
leading +), full dates (`03/14/1961`, `1961-03-14`, `14 March 1961`, `March 14, 1961`: a date of birth
or any other date of care), e-mail addresses and US social security numbers. Each is replaced by a
placeholder naming its kind (`[MRN]`, `[PHONE]`, `[DOB]`, `[EMAIL]`, `[SSN]`); names are not
recognised. Clinical quantities (`2.5 mg`, `140/90 mmHg`, `360 micromol/L`) are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.config import IdentifierKind, PrivacySettings

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_NOT_AFTER_NUMBER = r"(?<![\d.])"  # not the tail of a longer number or a decimal
_NOT_BEFORE_NUMBER = r"(?![\d@]|[.,/-]\d)"  # not continued by more digits, a decimal part or an e-mail

# Tried in this order at each position, so a keyword-led record number wins over the bare-digit rules,
# a date and an SSN over a phone number.
_PATTERNS: tuple[tuple[IdentifierKind, str], ...] = (
    (
        "mrn",
        r"\b(?:mrn|medical\s+record\s+(?:number|no\.?|\#)|hospital\s+(?:number|no\.?|\#)|nhs\s+(?:number|no\.?|\#)"
        r"|patient\s+(?:id|number|no\.?|\#))\s*[:\#]?\s*(?=[a-z-]*\d)[a-z0-9](?:[a-z0-9-]|\s(?=\d))*[a-z0-9]\b",
    ),
    ("email", r"[\w.%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b"),
    ("ssn", _NOT_AFTER_NUMBER + r"\d{3}-\d{2}-\d{4}" + _NOT_BEFORE_NUMBER),
    (
        "dob",
        # the same separator twice, so a dose range such as 0.5-10 mg is not a date
        _NOT_AFTER_NUMBER
        + r"(?:\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)(?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2})"
        + _NOT_BEFORE_NUMBER
        + rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}\b"
        + rf"|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
    ),
    (
        "phone",
        r"(?<![\w.+])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?|\d{2,5}[\s.-])(?:\d{2,4}[\s.-]){0,2}\d{3,6}"
        + _NOT_BEFORE_NUMBER
        + r"|\+\d{9,15}\b",
    ),
    ("mrn", _NOT_AFTER_NUMBER + r"\d{7,12}" + _NOT_BEFORE_NUMBER),
)
_PHONE_MIN_DIGITS = 10


@dataclass(frozen=True)
class Redaction:
    """The text with identifiers replaced, and the kinds replaced (each once, in order of first match)."""

    text: str
    kinds: tuple[str, ...]


class IdentifierRedactor:
    """Replace obvious identifiers with `[KIND]` placeholders; the values themselves are never kept."""

    def __init__(self, settings: PrivacySettings) -> None:
        kinds = set(settings.redact_patterns)
        chosen = [(kind, pattern) for kind, pattern in _PATTERNS if kind in kinds]
        self.kinds = tuple(dict.fromkeys(kind for kind, _ in chosen))
        self._names = [kind for kind, _ in chosen]
        self._regex = (
            re.compile("|".join(f"(?P<g{i}>{p})" for i, (_, p) in enumerate(chosen)), re.IGNORECASE) if chosen else None
        )

    def run(self, text: str) -> Redaction:
        if self._regex is None:
            return Redaction(text, ())
        found: dict[str, None] = {}
        # Until nothing changes: a placeholder can expose a neighbour that was glued to the identifier it
        # replaced. Every replacement removes at least one digit or '@', so this ends; and the result is
        # a fixed point, so redacting twice gives the same text.
        while True:
            redacted = self._regex.sub(lambda m: self._replace(m, found), text)
            if redacted == text:
                return Redaction(text, tuple(found))
            text = redacted

    def _replace(self, match: re.Match[str], found: dict[str, None]) -> str:
        index = next(i for i in range(len(self._names)) if match.group(f"g{i}") is not None)
        kind = self._names[index]
        value = match.group()
        if kind == "phone" and sum(c.isdigit() for c in value) < _PHONE_MIN_DIGITS:
            return value  # too short for a phone number: a quantity, a range, a time
        found[kind] = None
        return f"[{kind.upper()}]"

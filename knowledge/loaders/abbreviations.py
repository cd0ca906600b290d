"""Clinical abbreviation sense inventories: abbreviation (as written) -> its possible long forms.

Two sources from the Medical Abbreviation and Acronym Meta-Inventory are read:

- the Wikipedia list (`wikipedia_abbreviation_database.csv`, columns abr,long_form): curated
  clinical abbreviations, no counts;
- ADAM (`adam_database`, tab-separated after a '#' comment block): abbreviations defined in MEDLINE
  with counts. A record is "preferred abbreviation, variants with counts (AF:2682|Af:49|af:7),
  long forms with count and score (aflatoxin:68:0.0138|aflatoxins:21:0.0041), score, total count".
  Each written variant becomes an abbreviation of its own with its own count, since text is matched
  as written; the sense's long form is the record's first (most frequent) long-form variant, the
  others being spelling and plural variants of it.

Senses are deduplicated per abbreviation by (long form ignoring case, source), summing counts.
Order: Wikipedia senses first (clinical use, in file order), then ADAM's, most frequent first.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, replace
from pathlib import Path

from knowledge.loaders._common import open_text
from knowledge.vocabulary import VocabularyError

log = logging.getLogger(__name__)

WIKIPEDIA_FILE = "wikipedia_abbreviation_database.csv"
ADAM_FILE = "adam_database"
SOURCE_ORDER = ("Wikipedia", "ADAM")


@dataclass(frozen=True)
class AbbreviationSense:
    """One meaning of an abbreviation: its long form, how often a source saw it (None: not counted), the source."""

    long_form: str
    count: int | None
    source: str


class AbbreviationInventory(MappingABC[str, tuple[AbbreviationSense, ...]]):
    """Abbreviation as written -> its senses; `senses()` also finds other capitalisations."""

    def __init__(self, senses: MappingABC[str, Iterable[AbbreviationSense]]) -> None:
        self._senses = {abbr: tuple(s) for abbr, s in senses.items()}
        self._by_fold: dict[str, list[str]] = {}
        for abbr in self._senses:
            self._by_fold.setdefault(abbr.casefold(), []).append(abbr)

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, AbbreviationSense]]) -> AbbreviationInventory:
        """Build from (abbreviation, sense) pairs: deduplicated and ordered as the module docstring says."""
        collected: dict[str, dict[tuple[str, str], AbbreviationSense]] = {}
        for abbreviation, sense in entries:
            senses = collected.setdefault(abbreviation, {})
            key = (sense.long_form.casefold(), sense.source)
            if key in senses:
                sense = replace(senses[key], count=_add(senses[key].count, sense.count))
            senses[key] = sense
        return cls({abbr: _ordered(senses.values()) for abbr, senses in collected.items()})

    def __getitem__(self, abbreviation: str) -> tuple[AbbreviationSense, ...]:
        return self._senses[abbreviation]

    def __iter__(self) -> Iterator[str]:
        return iter(self._senses)

    def __len__(self) -> int:
        return len(self._senses)

    def senses(self, abbreviation: str) -> list[AbbreviationSense]:
        """Senses of the abbreviation as written; if it is not listed so, those of every capitalisation
        of it ("Copd" -> COPD's), merged as in `from_entries`. Empty when unknown."""
        if abbreviation in self._senses:
            return list(self._senses[abbreviation])
        spellings = self._by_fold.get(abbreviation.casefold(), [])
        if not spellings:
            return []
        merged = AbbreviationInventory.from_entries((abbreviation, s) for a in spellings for s in self._senses[a])
        return list(merged[abbreviation])


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


def _ordered(senses: Iterable[AbbreviationSense]) -> list[AbbreviationSense]:
    """Source order first, then most frequent first; stable, so uncounted senses keep file order."""
    rank = {s: i for i, s in enumerate(SOURCE_ORDER)}
    return sorted(senses, key=lambda s: (rank.get(s.source, len(rank)), -(s.count or 0)))


def read_wikipedia_csv(path: Path, source: str = "Wikipedia") -> Iterator[tuple[str, AbbreviationSense]]:
    """(abbreviation, sense) pairs from the Wikipedia list: a CSV with header abr,long_form."""
    with open_text(path) as stream:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["abr", "long_form"]:
                raise VocabularyError(f"{path}:1: expected the header abr,long_form, got {header}")
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise VocabularyError(f"{path}:{reader.line_num}: expected an abbreviation and a long form")
                yield row[0].strip(), AbbreviationSense(row[1].strip(), None, source)
        except csv.Error as exc:
            raise VocabularyError(f"{path}:{reader.line_num}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise VocabularyError(f"{path}:{reader.line_num + 1}: not UTF-8 ({exc.reason})") from exc


def _counted(field: str, parts: int) -> list[list[str]]:
    """'a:1|b:2' -> [['a', '1'], ['b', '2']]; the name may itself contain ':' (split from the right)."""
    items = [item.rsplit(":", parts - 1) for item in field.split("|")]
    if any(len(item) != parts or not item[0] or not item[1].isdigit() for item in items):
        raise ValueError(f"malformed field {field!r}")
    return items


def parse_adam_line(line: str, source: str = "ADAM") -> list[tuple[str, AbbreviationSense]]:
    """(abbreviation, sense) pairs of one ADAM record: one per written variant of the abbreviation.
    Raises ValueError naming the problem."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 5:
        raise ValueError(f"expected 5 tab-separated fields, got {len(fields)}")
    variants = _counted(fields[1], 2)
    long_forms = _counted(fields[2], 3)
    long_form = long_forms[0][0].strip()
    return [(variant.strip(), AbbreviationSense(long_form, int(count), source)) for variant, count in variants]


def read_adam(path: Path, source: str = "ADAM") -> Iterator[tuple[str, AbbreviationSense]]:
    """(abbreviation, sense) pairs from the ADAM database; '#' lines and blank lines are skipped."""
    lineno = 0
    with open_text(path) as stream:
        try:
            for lineno, line in enumerate(stream, 1):
                if line.startswith("#") or not line.strip():
                    continue
                try:
                    yield from parse_adam_line(line, source)
                except ValueError as exc:
                    raise VocabularyError(f"{path}:{lineno}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise VocabularyError(f"{path}:{lineno + 1}: not UTF-8 ({exc.reason})") from exc


def load_abbreviation_inventory(directory: Path) -> AbbreviationInventory:
    """The inventory from a folder holding the Wikipedia CSV and/or the ADAM database (at least one)."""
    directory = Path(directory)
    readers = [(directory / WIKIPEDIA_FILE, read_wikipedia_csv), (directory / ADAM_FILE, read_adam)]
    present = [(path, read) for path, read in readers if path.is_file()]
    if not present:
        raise VocabularyError(f"{directory}: no abbreviation inventory (expected {WIKIPEDIA_FILE} or {ADAM_FILE})")
    for path, _ in readers:
        if not path.is_file():
            log.info("abbreviation source absent", extra={"path": str(path)})
    return AbbreviationInventory.from_entries(pair for path, read in present for pair in read(path))

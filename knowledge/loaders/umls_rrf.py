"""Load the UMLS Metathesaurus from its Rich Release Format files: MRCONSO.RRF (names), MRSTY.RRF
(semantic types) and MRREL.RRF (relations).

RRF rows are '|'-terminated fields, one row per line. The real files are gigabytes, so they are read
line by line and only per-concept summaries are kept.

Reading MRREL: a row CUI1|...|REL|CUI2|...|RELA| says "CUI2 has relation REL (RELA) to CUI1"; the
UMLS documentation puts it as "relationships in MRREL.RRF are read from right to left". So REL=PAR
means CUI2 is a parent of CUI1 (CUI1 isa CUI2), REL=CHD with RELA=isa means CUI2 isa CUI1, and
RELA=may_treat means CUI2 (the drug) may_treat CUI1 (the disease). Every relation is in MRREL in
both directions (may_treat/may_be_treated_by, isa/inverse_isa, CHD/PAR), so both rows of a pair
give the same relation here and it is kept once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from knowledge.loaders._common import dedupe, open_text, split_terms
from knowledge.schema import Concept, Relation, RelationType, Vocabulary
from knowledge.vocabulary import VocabularyError

log = logging.getLogger(__name__)

SUPPRESSED = frozenset({"O", "E", "Y"})  # obsolete, suppressed by an editor, suppressible by source
ABBREVIATION_TTYS = frozenset({"AB", "ACR"})

# RELA labels read "CUI2 <rela> CUI1" -> relation (CUI2, type, CUI1).
_FORWARD: dict[str, RelationType] = {
    "isa": "isa",
    "may_treat": "may_treat",
    "may_prevent": "may_prevent",
    "has_manifestation": "has_symptom",
    "may_be_diagnosed_by": "diagnosed_by",
}
# Their inverses: "CUI2 <rela> CUI1" -> relation (CUI1, type, CUI2).
_INVERSE: dict[str, RelationType] = {
    "inverse_isa": "isa",
    "may_be_treated_by": "may_treat",
    "may_be_prevented_by": "may_prevent",
    "manifestation_of": "has_symptom",
    "may_diagnose": "diagnosed_by",
}


class ConsoRow(NamedTuple):
    """One MRCONSO.RRF row: one atom (a string from one source) of a concept."""

    CUI: str
    LAT: str
    TS: str
    LUI: str
    STT: str
    SUI: str
    ISPREF: str
    AUI: str
    SAUI: str
    SCUI: str
    SDUI: str
    SAB: str
    TTY: str
    CODE: str
    STR: str
    SRL: str
    SUPPRESS: str
    CVF: str


class StyRow(NamedTuple):
    """One MRSTY.RRF row: a semantic type of a concept."""

    CUI: str
    TUI: str
    STN: str
    STY: str
    ATUI: str
    CVF: str


class RelRow(NamedTuple):
    """One MRREL.RRF row: a relation, read "CUI2 has REL/RELA to CUI1"."""

    CUI1: str
    AUI1: str
    STYPE1: str
    REL: str
    CUI2: str
    AUI2: str
    STYPE2: str
    RELA: str
    RUI: str
    SRUI: str
    SAB: str
    SL: str
    RG: str
    DIR: str
    SUPPRESS: str
    CVF: str


def split_rrf_line(line: str, n_fields: int) -> list[str]:
    """The fields of one RRF row: exactly `n_fields` values, each terminated by '|'.

    Raises ValueError naming what is wrong; the readers add the file and line.
    """
    parts = line.rstrip("\r\n").split("|")
    if parts[-1] != "":
        raise ValueError("row does not end with '|'")
    if len(parts) - 1 != n_fields:
        raise ValueError(f"expected {n_fields} fields, got {len(parts) - 1}")
    parts.pop()
    return parts


def rrf_relation(row: RelRow, related: bool = True) -> Relation | None:
    """Our relation for one MRREL row (see the module docstring for the direction), or None to drop it.

    RELA decides when it is one we know; without a RELA, CHD and PAR are read as isa; any other RO
    becomes related_to (undirected, so stored once with the smaller CUI first) when `related` is set.
    Everything else (SIB, RQ, SY, RB/RN without isa, other RELAs under CHD/PAR) is dropped.
    """
    cui1, cui2, rel, rela = row.CUI1, row.CUI2, row.REL, row.RELA
    if cui1 == cui2:
        return None
    if rela in _FORWARD:
        return Relation(source=cui2, type=_FORWARD[rela], target=cui1)
    if rela in _INVERSE:
        return Relation(source=cui1, type=_INVERSE[rela], target=cui2)
    if not rela and rel == "CHD":
        return Relation(source=cui2, type="isa", target=cui1)
    if not rela and rel == "PAR":
        return Relation(source=cui1, type="isa", target=cui2)
    if rel == "RO" and related:
        low, high = sorted((cui1, cui2))
        return Relation(source=low, type="related_to", target=high)
    return None


@dataclass(slots=True)
class _Atoms:
    """What MRCONSO says about one concept, gathered while streaming."""

    name: str = ""
    name_rank: tuple[int, int] = (2, 0)
    terms: list[str] = field(default_factory=list)
    abbreviations: list[str] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)


def _rows(path: Path, n_fields: int) -> Iterator[list[str]]:
    """Fields of each non-blank row; a malformed row raises VocabularyError naming file and line."""
    lineno = 0
    with open_text(path) as stream:
        try:
            for lineno, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    yield split_rrf_line(line, n_fields)
                except ValueError as exc:
                    raise VocabularyError(f"{path}:{lineno}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise VocabularyError(f"{path}:{lineno + 1}: not UTF-8 ({exc.reason})") from exc


def _read_mrconso(path: Path, languages: tuple[str, ...], sources: Collection[str] | None) -> dict[str, _Atoms]:
    """Per CUI: its preferred name and other strings, from unsuppressed rows in the wanted languages
    and sources. The name is the row with TS=P, STT=PF, ISPREF=Y (in the first wanted language
    first), else the concept's first row."""
    rank_of_language = {lat: i for i, lat in enumerate(languages)}
    atoms: dict[str, _Atoms] = {}
    for fields in _rows(path, len(ConsoRow._fields)):
        row = ConsoRow._make(fields)
        lang_rank = rank_of_language.get(row.LAT)
        if lang_rank is None or row.SUPPRESS in SUPPRESSED or (sources is not None and row.SAB not in sources):
            continue
        entry = atoms.get(row.CUI)
        if entry is None:
            entry = atoms[row.CUI] = _Atoms()
        preferred = row.TS == "P" and row.STT == "PF" and row.ISPREF == "Y"
        rank = (0 if preferred else 1, lang_rank if preferred else 0)
        if rank < entry.name_rank:
            entry.name, entry.name_rank = row.STR, rank
        (entry.abbreviations if row.TTY in ABBREVIATION_TTYS else entry.terms).append(row.STR)
        if row.CODE and row.CODE != "NOCODE":
            entry.xrefs.append(f"{row.SAB}:{row.CODE}")
    return atoms


def _read_mrsty(path: Path, cuis: Collection[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(semantic type ids per CUI, semantic type names by id), for the CUIs asked for."""
    types: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    if not path.exists():
        log.warning("no MRSTY.RRF: concepts get no semantic types", extra={"path": str(path)})
        return types, names
    for fields in _rows(path, len(StyRow._fields)):
        row = StyRow._make(fields)
        if row.CUI in cuis:
            types.setdefault(row.CUI, []).append(row.TUI)
            names[row.TUI] = row.STY
    return types, names


def _read_mrrel(path: Path, cuis: Collection[str], sources: Collection[str] | None, related: bool) -> list[Relation]:
    """Our relations between loaded concepts, deduplicated, from unsuppressed rows of the wanted sources."""
    if not path.exists():
        log.warning("no MRREL.RRF: the vocabulary has no relations", extra={"path": str(path)})
        return []
    found: dict[Relation, None] = {}
    for fields in _rows(path, len(RelRow._fields)):
        row = RelRow._make(fields)
        if row.SUPPRESS in SUPPRESSED or (sources is not None and row.SAB not in sources):
            continue
        if row.CUI1 not in cuis or row.CUI2 not in cuis:
            continue
        relation = rrf_relation(row, related)
        if relation is not None:
            found[relation] = None
    return list(found)


def _concept(cui: str, atoms: _Atoms, semantic_types: list[str]) -> Concept:
    """A concept from its gathered atoms: abbreviations are AB/ACR strings plus abbreviation-like ones."""
    synonyms, abbreviation_like = split_terms(atoms.name, atoms.terms)
    written = dedupe([a.strip() for a in atoms.abbreviations] + list(abbreviation_like))
    abbreviations = [a for a in written if a != atoms.name]
    taken = {a.casefold() for a in abbreviations}
    return Concept(
        id=cui,
        name=atoms.name,
        semantic_types=tuple(dedupe(semantic_types)),
        synonyms=tuple(s for s in synonyms if s.casefold() not in taken),
        abbreviations=tuple(abbreviations),
        xrefs=tuple(dedupe(atoms.xrefs)),
        sources=("UMLS",),
    )


def _release(directory: Path) -> str:
    """The release name ("2024AA") from a .../2024AA/META layout, else the folder's name."""
    resolved = directory.resolve()
    return resolved.parent.name if resolved.name.upper() == "META" else resolved.name


def load_umls_rrf(
    directory: Path,
    languages: tuple[str, ...] = ("ENG",),
    sources: set[str] | None = None,
    *,
    related: bool = True,
) -> Vocabulary:
    """Concepts and relations from a UMLS Metathesaurus release folder (the one holding MRCONSO.RRF).

    `languages` are MRCONSO LAT codes; `sources` restricts names and relations to those source
    abbreviations (SAB), e.g. to leave out sources whose licence you do not hold. MRSTY.RRF and
    MRREL.RRF are optional (a warning is logged). `related=False` drops the many RO relations that
    have no more specific type here.
    """
    directory = Path(directory)
    atoms = _read_mrconso(directory / "MRCONSO.RRF", tuple(languages), sources)
    types, type_names = _read_mrsty(directory / "MRSTY.RRF", atoms)
    relations = _read_mrrel(directory / "MRREL.RRF", atoms, sources, related)
    try:
        return Vocabulary(
            version=f"UMLS {_release(directory)}",
            semantic_types=dict(sorted(type_names.items())),
            concepts=tuple(_concept(cui, a, types.get(cui, [])) for cui, a in atoms.items()),
            relations=tuple(relations),
        )
    except ValidationError as exc:
        raise VocabularyError(f"{directory}: {exc.errors()[0]['msg']}") from exc

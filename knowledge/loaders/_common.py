"""Helpers shared by the vocabulary loaders: identifier normalisation, term clean-up and concept merging.

Kept private to the package: the loaders' public surface is one function per format.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from knowledge.schema import Concept
from knowledge.vocabulary import VocabularyError

CUI_RE = re.compile(r"C\d{7}")
OBO_PURL = "http://purl.obolibrary.org/obo/"
# Prefixes that mean the same namespace, spelled differently by different publishers:
# DOID writes "UMLS_CUI:C0011849" and "MESH:D003920", MONDO's SSSOM files "UMLS:C0011849" and "mesh:D003920".
_PREFIX_ALIASES = {
    "umls": "UMLS",
    "umls_cui": "UMLS",
    "mesh": "MESH",
    "msh": "MESH",
    "doid": "DOID",
    "mondo": "MONDO",
    "symp": "SYMP",
    "hp": "HP",
}


def normalise_curie(identifier: str) -> str:
    """One spelling per identifier, so ids from different files compare equal.

    UMLS CUIs become bare CUIs ("UMLS_CUI:C0011849", "UMLS:C0011849" -> "C0011849"), OBO PURLs become
    CURIEs (".../obo/DOID_9352" -> "DOID:9352"), and known prefixes get one case ("mesh:" -> "MESH:").
    Anything else comes back stripped but otherwise unchanged.
    """
    value = identifier.strip()
    if value.startswith(OBO_PURL):
        local = value[len(OBO_PURL) :]
        if "_" in local and "#" not in local and "/" not in local:
            value = local.replace("_", ":", 1)
    prefix, sep, local = value.partition(":")
    if not sep:
        return value
    canonical = _PREFIX_ALIASES.get(prefix.lower())
    if canonical == "UMLS" and CUI_RE.fullmatch(local):
        return local
    return f"{canonical}:{local}" if canonical else value


def cui_of(identifier: str) -> str | None:
    """The UMLS CUI an identifier names, or None."""
    value = normalise_curie(identifier)
    return value if CUI_RE.fullmatch(value) else None


def curie_prefix(identifier: str) -> str:
    """The (normalised) namespace of an identifier: "DOID" for "DOID:9352", "UMLS" for a CUI."""
    value = normalise_curie(identifier)
    if CUI_RE.fullmatch(value):
        return "UMLS"
    return value.partition(":")[0] if ":" in value else ""


def dedupe(values: Iterable[str], key: Callable[[str], str] = str) -> list[str]:
    """Values in first-seen order, dropping empty ones and those whose key was already seen."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        k = key(value)
        if value and k not in seen:
            seen.add(k)
            out.append(value)
    return out


def looks_like_abbreviation(term: str) -> bool:
    """A single short token written mostly in capitals: "NIDDM", "CMT4B3", "HbA1c", "RI-CMTA".

    Sources list such strings as plain synonyms; the linker matches synonyms in any case, so "ALL"
    (acute lymphoblastic leukaemia) would match the word "all". As abbreviations they get the
    linker's case rules instead.
    """
    if len(term) > 10 or any(ch.isspace() for ch in term):
        return False
    letters = [ch for ch in term if ch.isalpha()]
    upper = sum(ch.isupper() for ch in letters)
    return upper >= 2 and 2 * upper >= len(letters)


def split_terms(name: str, terms: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(synonyms, abbreviations) from a concept's other terms: abbreviation-like terms go to
    abbreviations (deduplicated exactly: case matters), the rest to synonyms (deduplicated
    case-insensitively); neither repeats the name, and no synonym repeats an abbreviation's spelling."""
    cleaned = [t.strip() for t in terms]
    abbreviations = dedupe(t for t in cleaned if looks_like_abbreviation(t) and t != name)
    taken = {name.casefold()} | {a.casefold() for a in abbreviations}
    synonyms = [t for t in dedupe(cleaned, key=str.casefold) if t.casefold() not in taken]
    return tuple(synonyms), tuple(abbreviations)


def combine_concepts(concept_id: str, concepts: Sequence[Concept], extra_xrefs: Iterable[str] = ()) -> Concept:
    """One concept from several that name the same thing.

    The first concept wins the name; the others' names become synonyms. Synonyms, abbreviations,
    semantic types, xrefs and sources are unions in first-seen order; the others' ids become xrefs;
    an xref that only restates `concept_id` ("UMLS_CUI:C0011849" for C0011849) is dropped.
    """
    first = concepts[0]
    abbreviations = dedupe(a for c in concepts for a in c.abbreviations)
    taken = {first.name.casefold()} | {a.casefold() for a in abbreviations}
    synonyms = [
        s
        for s in dedupe([c.name for c in concepts[1:]] + [s for c in concepts for s in c.synonyms], key=str.casefold)
        if s.casefold() not in taken
    ]
    own = normalise_curie(concept_id)
    xrefs = [c.id for c in concepts] + [x for c in concepts for x in c.xrefs] + list(extra_xrefs)
    return Concept(
        id=concept_id,
        name=first.name,
        semantic_types=tuple(dedupe(t for c in concepts for t in c.semantic_types)),
        synonyms=tuple(synonyms),
        abbreviations=tuple(abbreviations),
        xrefs=tuple(x for x in dedupe(xrefs, key=normalise_curie) if normalise_curie(x) != own),
        sources=tuple(dedupe(s for c in concepts for s in c.sources)),
    )


def open_text(path: Path) -> IO[str]:
    """A text stream over a UTF-8 file, gzipped or not (decided by the file's magic bytes, not its name)."""
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        if gzipped:
            return gzip.open(path, "rt", encoding="utf-8", newline="\n")
        return path.open(encoding="utf-8", newline="\n")
    except OSError as exc:
        raise VocabularyError(f"{path}: cannot read ({exc.strerror or exc})") from exc

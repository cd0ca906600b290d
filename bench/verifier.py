"""Citation verifier: detection of corrupted sentences and false alarms on faithful ones, on NCI PDQ.

    python bench/verifier.py                             # defaults: 600 sentences from 40 PDQ summaries
    python bench/verifier.py --sentences 200 --docs 15   # a quick look

A seeded sample of PDQ summaries is loaded and chunked with the indexer's own loader and chunker
(default chunk settings, token counts from the packaged MiniLM tokenizer). From their chunks, real prose
sentences are picked (8-60 words, a capital first, a full stop last; no headings, bold lead-ins,
tables or list lead-ins), round-robin over the documents. Each sentence is cited to its own chunk, with
the chunks before and after it and one more chunk of the same document as the evidence the
verifier is given. From each sentence, where the operation applies:

  faithful/verbatim      the sentence as it stands in the chunk
  faithful/plain         the same without citation markers ("[5,6]"), emphasis and line breaks
                         (only where that changes it; every reworded variant below starts from it)
  faithful/reordered     a leading clause moved to the end ("In X, Y." -> "Y in X."), or the two
                         halves of "A; B." or "A, and B." swapped
  faithful/synonym       one concept mention replaced by another name of the same concept
  corrupt/number         one number changed (5 -> 10, 2.5 -> 25, 30% -> 45%, two -> four) to a value
                         that occurs nowhere in the chunk
  corrupt/drug-swap      a drug mention replaced by another drug of the vocabulary
  corrupt/condition-swap a condition replaced by another condition seen in the sampled documents;
                         never an is_a ancestor or descendant, never a concept present in the chunk
  corrupt/negation       "not" inserted after the first auxiliary ("is" -> "is not"), or "did
                         not"/"does not" before a main verb ("improved" -> "did not improve"), or an
                         existing "not"/"no" removed
  corrupt/wrong-chunk    the verbatim sentence cited to another chunk of the evidence that holds no
                         near copy of it

Variants are built from the text, the vocabulary and the chunk alone; none is kept or dropped by what
the verifier says. Synonyms are restricted to names that only their concept uses, are not narrower
wordings of the mention (a superset of its words) and hold no "with", "and", commas or digits, since
merged DOID classes list subtypes among their "exact" synonyms.

Vocabulary: corpus/demo/vocabulary.yaml (its drugs, semantic types T121 and T195) merged with the
Human Disease Ontology (conditions), read with knowledge.sources.load_knowledge, linked with
knowledge.linker.ConceptLinker as the index build does.

A sentence is flagged when its verdict is not "supported" (only all-supported answers count as
verified); the strict view flags "unsupported" only. Goals: detection >= 95% per corruption type,
false alarms <= 5% per faithful type. Prints a table, writes bench/results/verifier.json and
bench/results/verifier-misses.json (a few missed examples per type, with the verifier's reasons).
Data are read in place from --data or $CLINQA_DATA (default ../shared/data); nothing is copied. When
the data are absent the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from app.config import ChunkSettings, EncoderSettings, VerifySettings
from app.pipeline.types import Draft, DraftSentence, ScoredChunk, SpanRef
from indexer.analysis import Analyzer, split_sentences
from indexer.chunking import SectionChunker
from indexer.dense import load_encoder, token_counter
from indexer.loaders import LoaderError, load_file
from indexer.store import Chunk
from knowledge.graph import KnowledgeGraph
from knowledge.linker import ConceptLinker, Mention
from knowledge.schema import Vocabulary
from knowledge.sources import load_knowledge
from knowledge.vocabulary import load_vocabulary

REPO = Path(__file__).resolve().parents[1]
DETECTION_GOAL = 0.95
FALSE_ALARM_GOAL = 0.05
MIN_ROW = 20  # fewest cases for a swap category to get its own row
EXAMPLES_PER_TYPE = 5
MAX_EXAMPLES = 40
EXAMPLE_CHARS = 200
OTHER_EVIDENCE = 3  # chunks of the same document given to the verifier beside the cited one

FAITHFUL = ("faithful/verbatim", "faithful/plain", "faithful/reordered", "faithful/synonym")
CORRUPT = (
    "corrupt/number",
    "corrupt/drug-swap",
    "corrupt/condition-swap",
    "corrupt/negation",
    "corrupt/wrong-chunk",
)
DRUG_TYPES = frozenset({"T121", "T195"})
CONDITION_TYPES = frozenset({"T047", "T191"})

# --- sentences --------------------------------------------------------------------------------------

# Citation and evidence markers as the Markdown loader renders them: "[5,6]", "[9-12]", "[Level of evidence A1]".
_MARKER = r"\[(?:\d+(?:\s*[,\u2013-]\s*\d+)*|Level of evidence[^\]\n]{0,20})\]"
_MARKER_RE = re.compile(_MARKER)
_TRAILING_MARKERS_RE = re.compile(rf"(?:\s*{_MARKER})+\s*$")
# split_sentences sees no boundary in "...2.07).[5,6] A similar ...": markers sit between the stop and the space.
_GLUED_RE = re.compile(rf"(?<=[.!?])(?:{_MARKER})+(?=\s+[\"(*]?[A-Z])")
# What is left of a boundary split_sentences missed: "alleles. DPYD genetic testing ..."
_INNER_STOP_RE = re.compile(r"[a-z0-9)\]]\.\s+[*\"(]?[A-Z]")


def clean(text: str) -> str:
    """A sentence as a writer would quote it: no citation markers or emphasis, one line."""
    text = _MARKER_RE.sub("", text).replace("*", "")
    text = " ".join(text.split())
    return re.sub(r"\s+([,.;:)])", r"\1", text)


def is_prose(raw: str, plain: str) -> bool:
    n_words = len(plain.split())
    return (
        8 <= n_words <= 60
        and plain[:1].isupper()
        and plain.endswith(".")
        and not plain.endswith(("e.g.", "i.e.", "etc.", "et al."))
        and "**" not in raw
        and not any(c in plain for c in "|#[]{}")
        and "http" not in plain
        and not _INNER_STOP_RE.search(plain[:-1])
        and not re.search(r"\b(?:Table|Figure)\s+\d", plain)
    )


def chunk_sentences(chunk: Chunk) -> list[tuple[int, int]]:
    """(start, end) in the chunk of each prose sentence, trailing citation markers excluded."""
    found: list[tuple[int, int]] = []
    text = chunk.text
    for span in split_sentences(text):
        cuts = [span.start, *(m.end() for m in _GLUED_RE.finditer(text, span.start, span.end)), span.end]
        for a, b in itertools.pairwise(cuts):
            piece = text[a:b]
            piece = piece[: len(piece) - len(m.group())] if (m := _TRAILING_MARKERS_RE.search(piece)) else piece
            lead = len(piece) - len(piece.lstrip())
            piece = piece.strip()
            if piece and is_prose(piece, clean(piece)):
                found.append((a + lead, a + lead + len(piece)))
    return found


# --- vocabulary -------------------------------------------------------------------------------------


def _key(form: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", form.casefold()))


def _plural(form: str) -> bool:
    last = form.split()[-1].lower() if form.split() else ""
    return last.endswith("s") and not last.endswith(("ss", "is", "us"))


class Lexicon:
    """The vocabulary seen from the generators: forms, categories and the is_a hierarchy."""

    def __init__(self, vocabulary: Vocabulary, demo_ids: set[str]) -> None:
        self.concepts = {c.id: c for c in vocabulary.concepts}
        self.demo_ids = demo_ids
        self.owners: dict[str, set[str]] = {}
        for c in vocabulary.concepts:
            for form in (c.name, *c.synonyms, *c.abbreviations):
                self.owners.setdefault(_key(form), set()).add(c.id)
        self.parents: dict[str, set[str]] = {}
        for r in vocabulary.relations:
            if r.type == "isa":
                self.parents.setdefault(r.source, set()).add(r.target)
        self._ancestors: dict[str, frozenset[str]] = {}

    def category(self, concept_id: str) -> str | None:
        types = set(self.concepts[concept_id].semantic_types)
        if types & DRUG_TYPES:
            return "drug"
        if types & CONDITION_TYPES:
            return "condition"
        return None

    def ancestors(self, concept_id: str) -> frozenset[str]:
        if concept_id not in self._ancestors:
            seen: set[str] = set()
            todo = list(self.parents.get(concept_id, ()))
            while todo:
                c = todo.pop()
                if c not in seen:
                    seen.add(c)
                    todo.extend(self.parents.get(c, ()))
            self._ancestors[concept_id] = frozenset(seen)
        return self._ancestors[concept_id]

    def related(self, a: str, b: str) -> bool:
        return a == b or b in self.ancestors(a) or a in self.ancestors(b)

    def forms(self, concept_id: str) -> list[str]:
        c = self.concepts[concept_id]
        return list(dict.fromkeys((c.name, *c.synonyms)))

    def cased_forms(self, concept_id: str) -> list[str]:
        """Forms whose capitals are meant (the demo vocabulary capitalises every preferred name)."""
        name = self.concepts[concept_id].name
        return [f for f in self.forms(concept_id) if not (concept_id in self.demo_ids and f == name)]

    def written(self, concept_id: str, form: str) -> str:
        """A form as it reads mid-sentence: the demo vocabulary writes preferred names capitalised."""
        c = self.concepts[concept_id]
        first = form.split()[0]
        if concept_id in self.demo_ids and form == c.name and first[0].isupper() and first[1:2].islower():
            return form[0].lower() + form[1:]
        return form


def simple_form(form: str) -> bool:
    """A name that can stand in running text: short, no qualifiers, lists or codes."""
    return (
        1 <= len(form.split()) <= 5
        and not re.search(r"[\d,;()\[\]:]", form)
        and not re.search(r"\b(?:with|without|and|or|due|type|NOS|other|unspecified)\b", form, re.IGNORECASE)
    )


# --- variant generators -----------------------------------------------------------------------------


@dataclass
class Source:
    doc: str
    chunk: Chunk
    start: int
    end: int
    raw: str
    plain: str
    evidence: list[Chunk]
    mentions: list[Mention] = field(default_factory=list)


@dataclass
class Variant:
    kind: str
    text: str
    cited: Chunk
    source: int
    change: str = ""
    subkind: str = ""
    extra: dict = field(default_factory=dict)


_LEAD_WORDS = frozenset(
    """in for among after during following despite with at on by within from over under before since
    across between beyond regardless compared based as although though because when whereas while if
    unless once until""".split()
)
_CONCESSIVE = frozenset({"although", "though", "whereas", "while"})
_DISCOURSE_LEADS = frozenset(
    p.strip()
    for p in """in addition|in contrast|in general|in summary|in conclusion|for example|for instance|in particular|
    as a result|on the other hand|in other words|in fact|to date|at present|in practice|as such|in turn|
    in this context|in this setting|on this basis|as expected|in comparison|by contrast|at the same time|
    as noted above|as a consequence|in most cases|in many cases|in some cases|for this reason|in brief|
    in short|in any case|in either case|in both cases|in all cases|of note""".split("|")
)
_CONNECTIVES = frozenset(
    """thus therefore however hence consequently moreover furthermore also then still yet otherwise
    accordingly instead nevertheless nonetheless similarly likewise subsequently additionally""".split()
)
_PRONOUNS = frozenset("it its they them their this these those he she his her such both either each".split())


def _upper_first(text: str) -> str:
    first = text.split()[0] if text.split() else ""
    if any(ch.isupper() for ch in first[1:]):  # pH, mRNA, eGFR: leave as written
        return text
    return text[:1].upper() + text[1:]


def _lower_first(text: str, context: str) -> str:
    """Lower-case a sentence's first word when it moves inside the sentence, unless the chunk writes it
    capitalised mid-sentence and never in lower case (a name: "Lynch", "Hodgkin") or it is an acronym."""
    first = text.split()[0] if text.split() else ""
    if not first[:1].isupper() or any(ch.isupper() or ch.isdigit() for ch in first[1:]):
        return text
    word = re.match(r"[A-Za-z]+", first)
    if word is None:
        return text
    w = word.group()
    context = clean(context)
    capitalised_inside = any(
        m.start() > 0 and context[: m.start()].rstrip()[-1:] not in ".!?:-" for m in re.finditer(rf"\b{w}\b", context)
    )
    if capitalised_inside and not re.search(rf"\b{w.lower()}\b", context):
        return text
    return text[:1].lower() + text[1:]


def reorder(plain: str, context: str) -> tuple[str, str] | None:
    """A clause-level reordering with the same words, or None when no clean one exists."""
    body = plain[:-1]
    # 1. A leading prepositional or subordinate phrase: "In X, Y." -> "Y in X."
    m = re.match(r"([A-Z][^,;]*?),\s+(.+)$", body)
    if m:
        lead, rest = m.group(1), m.group(2)
        first = lead.split()[0].lower()
        lead_words = lead.split()
        rest_words = rest.split()
        next_comma = rest.find(",")
        listy = next_comma >= 0 and len(rest[:next_comma].split()) <= 4
        if (
            first in _LEAD_WORDS
            and 2 <= len(lead_words) <= 15
            and len(rest_words) >= 5
            and not any(lead.lower() == d or lead.lower().startswith(f"{d} ") for d in _DISCOURSE_LEADS)
            and rest_words[0].lower() not in _CONNECTIVES | {"and", "or", "but", "which", "who", "whereas"}
            and ";" not in rest
            and not listy
            and not rest[:1].isdigit()
            and lead.count("(") == lead.count(")")
        ):
            joiner = ", " if first in _CONCESSIVE else " "
            moved = lead[:1].lower() + lead[1:]
            return f"{_upper_first(rest)}{joiner}{moved}.", "leading-clause"
    # 2. Two clauses joined by a semicolon: "A; B." -> "B; A."
    if body.count(";") == 1:
        a, b = (p.strip() for p in body.split(";"))
        if _swappable(a, b):
            return f"{_upper_first(b)}; {_lower_first(a, context)}.", "semicolon"
    # 3. Two clauses joined by ", and": "A, and B." -> "B, and A." (the only comma in the sentence)
    if body.count(",") == 1 and ", and " in body and ";" not in body:
        a, b = (p.strip() for p in body.split(", and "))
        if _swappable(a, b) and b.split()[0].lower() in {"the", "a", "an", "most", "all", "some", "many"}:
            return f"{_upper_first(b)}, and {_lower_first(a, context)}.", "and-clauses"
    return None


_VERBISH_RE = re.compile(
    r"\b(?:is|are|was|were|be|been|has|have|had|may|might|can|could|will|would|should|must|do|does|did|\w{3,}ed)\b"
)


def _swappable(a: str, b: str) -> bool:
    """Two independent clauses: each long enough, with a verb, balanced brackets, starting with a word; the
    second not leaning on the first ("thus", "it")."""
    words_a, words_b = a.split(), b.split()
    return (
        all(p.count("(") == p.count(")") and p[:1].isalpha() and _VERBISH_RE.search(p) for p in (a, b))
        and len(words_a) >= 5
        and len(words_b) >= 5
        and words_b[0].lower() not in _CONNECTIVES | _PRONOUNS
        and not (_CONNECTIVES & {w.lower().strip(",") for w in words_b})
    )


def replace_mention(text: str, mention: Mention, replacement: str) -> str:
    """The text with the mention replaced, capitalised at the start and "a"/"an" before it agreeing."""
    if mention.start == 0:
        replacement = _upper_first(replacement)
    before = text[: mention.start]
    m = re.search(r"\b([Aa])n? $", before)
    if m:
        article = m.group(1) + ("n" if replacement[:1].lower() in "aeiou" else "")
        before = before[: m.start()] + article + " "
    return before + replacement + text[mention.end :]


_GENERIC = frozenset(
    """disease diseases syndrome syndromes disorder disorders cancer cancers tumor tumors tumour tumours neoplasm
    neoplasms carcinoma carcinomas malignancy malignancies infection infections lesion lesions condition
    conditions illness""".split()
)


def _eligible(mention: Mention, lexicon: Lexicon, text: str) -> bool:
    """A mention of a specific concept written exactly as one of its names or synonyms, unambiguous, not
    corrected, not part of a hyphenated word or across punctuation, and not inside a capitalised title or
    name ("National Cancer Institute", "see Breast Cancer Screening")."""
    if mention.via == "abbreviation" or mention.tolerant or mention.alternatives:
        return False
    if not re.fullmatch(r"[\w' /-]+", mention.text) or mention.text.lower() in _GENERIC:
        return False
    if text[mention.start - 1 : mention.start] == "-" or text[mention.end : mention.end + 1] == "-":
        return False
    if mention.start > 0 and mention.text[:1].isupper():
        first = mention.text.split()[0]
        if not any(f.startswith(first) for f in lexicon.cased_forms(mention.concept_id)):
            return False
    if sum(1 for m in re.finditer(re.escape(mention.text), text, re.IGNORECASE)) != 1:
        return False
    return any(_key(f) == _key(mention.text) for f in lexicon.forms(mention.concept_id))


def synonym(src: Source, lexicon: Lexicon, rng: random.Random) -> Variant | None:
    options: list[tuple[Mention, str]] = []
    for m in src.mentions:
        if not _eligible(m, lexicon, src.plain):
            continue
        words = set(_key(m.text).split())
        for form in lexicon.forms(m.concept_id):
            fwords = set(_key(form).split())
            if (
                _key(form) == _key(m.text)
                or lexicon.owners.get(_key(form), set()) != {m.concept_id}
                or not simple_form(form)
                or fwords >= words  # a narrower wording ("primary breast cancer" for "breast cancer")
                or len(fwords) > len(words) + 3
                or _plural(form) != _plural(m.text)
            ):
                continue
            options.append((m, form))
    if not options:
        return None
    m, form = rng.choice(options)
    written = lexicon.written(m.concept_id, form)
    text = replace_mention(src.plain, m, written)
    return Variant("faithful/synonym", text, src.chunk, -1, f"'{m.text}' -> '{written}' ({m.concept_id})")


def concept_swap(
    src: Source,
    category: str,
    pool: list[str],
    lexicon: Lexicon,
    in_chunk: set[str],
    chunk_text: str,
    rng: random.Random,
) -> Variant | None:
    mentions = [
        m for m in src.mentions if lexicon.category(m.concept_id) == category and _eligible(m, lexicon, src.plain)
    ]
    if not mentions:
        return None
    m = rng.choice(mentions)
    lowered = chunk_text.lower()
    new = None
    for c in rng.sample(pool, len(pool)):
        name = lexicon.concepts[c].name
        if (
            c not in in_chunk
            and not lexicon.related(c, m.concept_id)
            and _plural(name) == _plural(m.text)
            and _key(name) not in _key(m.text)
            and _key(m.text) not in _key(name)
            and not any(len(f) >= 4 and f.lower() in lowered for f in lexicon.forms(c))
        ):
            new = c
            break
    if new is None:
        return None
    written = lexicon.written(new, lexicon.concepts[new].name)
    text = replace_mention(src.plain, m, written)
    return Variant(
        f"corrupt/{category}-swap",
        text,
        src.chunk,
        -1,
        f"'{m.text}' ({m.concept_id}) -> '{written}' ({new})",
        category,
        {"new_concept": new},
    )


_NUMBER_RE = re.compile(
    r"(?<![\w.,/\-+])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    r"(?![\w/]|[.,]\d|-(?!(?:year|month|week|day|hour|fold|cycle|dose)s?\b))(\s?%)?"
)
_ANY_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_DOSE_UNITS = re.compile(r"\s?(?:mg|g|mcg|µg|mg/m2|mg/kg|gy|cgy|mci|mbq|iu|units?|ml)\b", re.IGNORECASE)
_TIME_UNITS = re.compile(r"[\s-](?:years?|months?|weeks?|days?|hours?)\b", re.IGNORECASE)
_NUMBER_WORDS = "two three four five six seven eight nine ten eleven twelve".split()


def _norm_number(value: str) -> str:
    value = value.replace(",", "")
    return value.rstrip("0").rstrip(".") if "." in value else value.lstrip("0") or "0"


def numbers_in(text: str) -> set[str]:
    return {_norm_number(n) for n in _ANY_NUMBER_RE.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text))}


def _format(value: float, like: str) -> str:
    decimals = len(like.split(".")[1]) if "." in like else 0
    if decimals == 0:
        out = str(round(value))
        return f"{round(value):,}" if "," in like else out
    return f"{value:.{decimals}f}"


def _new_values(value: str, percent: bool, rng: random.Random) -> list[str]:
    v = float(value.replace(",", ""))
    if percent:
        steps = [15, 10, 20] if v <= 50 else [-15, -10, -20]
        out = [_format(v + s, value) for s in steps if 0 < v + s <= 100]
        return [*out, _format(v * 2, value)] if v * 2 <= 100 else out
    if "." in value:
        decimals = len(value.split(".")[1])
        bumped = _format(v + rng.randint(3, 7) * 10**-decimals, value)
        if v < 1 or decimals > 1:  # "0.78" -> "78" or "1.31" -> "131" would be no writer's slip
            return [bumped]
        shifted = value.replace(".", "", 1)  # a dropped decimal point: 2.5 -> 25
        return [shifted, bumped] if rng.random() < 0.5 else [bumped, shifted]
    n = int(v)
    if 1950 <= n <= 2030 and "," not in value:
        return [str(n + d) for d in rng.sample([-7, -5, -3, 3, 5], 5) if n + d <= 2025]
    if n == 0:
        return ["5", "10"]
    if n == 1:
        return ["2", "3"]
    if n <= 12:
        return [str(n * 2), str(n + rng.randint(1, 3)), str(n + 4)]
    return [_format(n * 2, value), _format(n + max(1, round(n * 0.4)), value), _format(n * 3, value)]


def number(src: Source, rng: random.Random) -> Variant | None:
    text = src.plain
    taken = numbers_in(src.chunk.text) | numbers_in(src.chunk.breadcrumb) | numbers_in(text)
    sites = []
    for m in _NUMBER_RE.finditer(text):
        after = text[m.end() : m.end() + 20].lower()
        if m.group(2) and after.lstrip().startswith(("ci", "confidence")):
            continue  # the 95% of a confidence interval is a convention, not a finding
        sites.append(m)
    words = [m for m in re.finditer(rf"\b(?:{'|'.join(_NUMBER_WORDS)})\b", text, re.IGNORECASE)]
    if not sites and not words:
        return None
    if sites:
        m = rng.choice(sites)
        value, percent = m.group(1), bool(m.group(2))
        tail = text[m.end(1) : m.end(1) + 12]
        for new in _new_values(value, percent, rng):
            if _norm_number(new) not in taken and new != value:
                if percent:
                    kind = "percent"
                elif _DOSE_UNITS.match(tail):
                    kind = "dose"
                elif _TIME_UNITS.match(tail):
                    kind = "duration"
                elif re.fullmatch(r"(19[5-9]\d|20[0-3]\d)", value):
                    kind = "year"
                elif "." in value:
                    kind = "decimal"
                else:
                    kind = "count"
                out = text[: m.start(1)] + new + text[m.end(1) :]
                return Variant("corrupt/number", out, src.chunk, -1, f"'{value}' -> '{new}'", kind)
        return None
    m = rng.choice(words)
    lowered = (src.chunk.text + " " + src.chunk.breadcrumb).lower()
    choices = [w for w in _NUMBER_WORDS if w != m.group().lower() and not re.search(rf"\b{w}\b", lowered)]
    if not choices:
        return None
    new = rng.choice(choices)
    new = new.capitalize() if m.group()[0].isupper() else new
    out = text[: m.start()] + new + text[m.end() :]
    return Variant("corrupt/number", out, src.chunk, -1, f"'{m.group()}' -> '{new}'", "word")


_AUX = "is are was were has have had can could may might should will would must".split()
_NOT_AFTER_AUX_RE = re.compile(
    r"\b(is|are|was|were|has|have|had|can|could|may|might|should|will|would|must|does|do|did)\s+not\b"
    r"(?!\s+(?:only|yet)\b)"
)
_CANNOT_RE = re.compile(r"\b([Cc]an)not\b")
_NO_RE = re.compile(
    r"\b(?:showed|shows|found|finds|was|were|is|are|had|has|have|observed|reported|demonstrated|revealed)\s+"
    r"(no)\s+((?:statistically\s+)?(?:significant|clear|apparent|overall|further|additional|meaningful|major)\s+)?"
    r"(differences?|benefits?|improvements?|effects?|associations?|increases?|reductions?|changes?|advantages?|"
    r"correlations?|relationships?|evidence|data)\b"
)
_RELATIVE = frozenset("which that who whom whose than as if whether".split())
_NO_VERB_BEFORE = frozenset(
    """the a an of with for in to by and or more most less least be been being was were is are has have had
    not no this that these those its their our his her""".split()
)
_AUX_ADVERBS = frozenset(
    "also often usually generally typically commonly frequently always currently still now already".split()
)
_NOUN_NEXT = frozenset("have has had were was are is be of".split())
_PARTICIPLE_NEXT = frozenset("to by with in at from for as on during after".split())
_PAST = dict(
    pair.split(":")
    for pair in """improved:improve reduced:reduce increased:increase decreased:decrease lowered:lower
    prolonged:prolong showed:show demonstrated:demonstrate found:find reported:report observed:observe
    suggested:suggest resulted:result led:lead provided:provide produced:produce achieved:achieve
    confirmed:confirm revealed:reveal supported:support identified:identify caused:cause required:require
    affected:affect indicated:indicate predicted:predict correlated:correlate differed:differ occurred:occur
    developed:develop received:receive experienced:experience benefited:benefit responded:respond
    survived:survive extended:extend enhanced:enhance prevented:prevent delayed:delay changed:change
    influenced:influence altered:alter yielded:yield worsened:worsen exceeded:exceed remained:remain
    appeared:appear detected:detect included:include examined:examine noted:note had:have""".split()
)
_PRESENT = dict(
    pair.split(":")
    for pair in """increases:increase decreases:decrease reduces:reduce improves:improve
    requires:require affects:affect prevents:prevent predicts:predict indicates:indicate suggests:suggest
    shows:show appears:appear occurs:occur depends:depend varies:vary includes:include provides:provide
    involves:involve correlates:correlate differs:differ produces:produce contains:contain has:have
    confers:confer carries:carry""".split()
)


def negation(src: Source) -> Variant | None:
    """Flip the sentence's polarity once: remove its negation, else negate its first verb."""
    text = src.plain
    m = _NOT_AFTER_AUX_RE.search(text)
    if m and not re.search(r"\b(?:whether or not|if not|not only)\b", text):
        out = text[: m.end(1)] + text[m.end() :]
        return Variant("corrupt/negation", out, src.chunk, -1, f"'{m.group()}' -> '{m.group(1)}'", "remove-not")
    m = _CANNOT_RE.search(text)
    if m:
        out = text[: m.start()] + m.group(1) + text[m.end() :]
        return Variant("corrupt/negation", out, src.chunk, -1, f"'{m.group()}' -> '{m.group(1)}'", "remove-not")
    m = _NO_RE.search(text)
    if m:
        adjective, noun = m.group(2) or "", m.group(3)
        uncountable = noun in {"evidence", "data"} or (noun.endswith("s") and noun != "data")
        article = "" if uncountable else ("an " if (adjective or noun)[0] in "aeiou" else "a ")
        out = text[: m.start(1)] + article + text[m.end(1) :].lstrip()
        return Variant("corrupt/negation", out, src.chunk, -1, f"'no {adjective}{noun}' -> removed 'no'", "remove-no")
    if re.search(r"\b(?:not|no|never|neither|nor|without|cannot)\b|n't\b", text, re.IGNORECASE):
        return None  # already negated in a form we do not undo; adding a second negation would be muddled
    words = list(re.finditer(r"[A-Za-z]+", text))
    for i, w in enumerate(words):
        word = w.group()
        prev = words[i - 1].group().lower() if i else ""
        nxt = words[i + 1].group().lower() if i + 1 < len(words) else ""
        if prev in _RELATIVE or i == 0:
            continue
        if word in _AUX:
            if word in ("has", "have", "had") and not (
                nxt == "been" or (nxt.endswith(("ed", "en", "wn")) and len(nxt) > 4)
            ):
                continue
            if word == "can":
                out = text[: w.start()] + "cannot" + text[w.end() :]
                return Variant("corrupt/negation", out, src.chunk, -1, "'can' -> 'cannot'", "insert-not")
            if nxt in _AUX_ADVERBS:  # "is also available" -> "is also not available"
                w = words[i + 1]
                word = f"{word} {nxt}"
            out = text[: w.end()] + " not" + text[w.end() :]
            return Variant("corrupt/negation", out, src.chunk, -1, f"'{word}' -> '{word} not'", "insert-not")
        base = _PAST.get(word) or _PRESENT.get(word)
        participle = word in _PAST and nxt in _PARTICIPLE_NEXT  # "women found to have", "patients given with"
        noun = nxt in _NOUN_NEXT or text[w.start() - 1 : w.start()] == "-" or text[w.end() : w.end() + 1] == "-"
        if (
            base
            and prev not in _NO_VERB_BEFORE
            and not participle
            and not noun  # "increases have been noted", "NCI-supported trials"
            and not (word == "had" and nxt.endswith("ed"))
        ):
            do = "did" if word in _PAST else "does"
            at = words[i - 1].start() if prev.endswith("ly") and i > 1 else w.start()
            adverb = text[at : w.start()]
            out = text[:at] + f"{do} not {adverb}{base}" + text[w.end() :]
            change = f"'{text[at : w.end()]}' -> '{do} not {adverb}{base}'"
            return Variant("corrupt/negation", out, src.chunk, -1, change, f"insert-{do}-not")
    return None


def _windows(text: str) -> list[str]:
    spans = split_sentences(text)
    out = [text[s.start : s.end] for s in spans]
    out += [text[a.start : b.end] for a, b in itertools.pairwise(spans)]
    return out or [text]


def near_copy(sentence: str, chunk: Chunk, threshold: float = 0.7) -> bool:
    """Whether `chunk` holds the sentence or a close wording of it (word-level similarity)."""
    words = clean(sentence).lower().split()
    if clean(sentence).lower() in clean(chunk.text).lower():
        return True
    for window in _windows(chunk.text):
        other = clean(window).lower().split()
        if difflib.SequenceMatcher(None, words, other, autojunk=False).ratio() >= threshold:
            return True
    return False


def wrong_chunk(src: Source, rng: random.Random) -> Variant | None:
    others = [c for c in src.evidence if c.id != src.chunk.id and not near_copy(src.raw, c)]
    if not others:
        return None
    target = rng.choice(others)
    where = "adjacent" if abs(target.ordinal - src.chunk.ordinal) == 1 else "same document"
    return Variant(
        "corrupt/wrong-chunk",
        src.raw,
        target,
        -1,
        f"cited to chunk {target.ordinal} instead of {src.chunk.ordinal}",
        where,
    )


# --- corpus -----------------------------------------------------------------------------------------


def load_sources(
    files: list[Path],
    chunker: SectionChunker,
    linker: ConceptLinker,
    n_sentences: int,
    rng: random.Random,
) -> tuple[list[Source], dict]:
    """Chunk the documents and pick sentences round-robin over them; also the conditions they mention."""
    per_doc: list[list[Source]] = []
    stats: Counter[str] = Counter()
    attested: set[str] = set()
    chunk_concepts: dict[str, set[str]] = {}
    for path in files:
        try:
            doc = load_file(path, f"pdq/{path.stem}")[0]
        except LoaderError as exc:
            print(f"skipped {path.name}: {exc.reason}", file=sys.stderr)
            stats["skipped_documents"] += 1
            continue
        chunks = chunker.run(doc)
        stats["documents"] += 1
        stats["chunks"] += len(chunks)
        found: list[Source] = []
        seen: set[str] = set()
        for i, chunk in enumerate(chunks):
            ids = {m.concept_id for m in linker.link(f"{chunk.breadcrumb}\n{chunk.text}")}
            chunk_concepts[chunk.id] = ids
            attested |= ids
            for start, end in chunk_sentences(chunk):
                raw = chunk.text[start:end]
                plain = clean(raw)
                if plain.lower() in seen:
                    continue
                seen.add(plain.lower())
                neighbours = [chunks[j] for j in (i - 1, i + 1) if 0 <= j < len(chunks)]
                found.append(Source(path.stem, chunk, start, end, raw, plain, [chunk, *neighbours]))
        stats["candidate_sentences"] += len(found)
        # One more chunk of the document, away from the cited one: a realistic, less related piece of evidence.
        for src in found:
            far = [c for c in chunks if abs(c.ordinal - src.chunk.ordinal) > 1]
            src.evidence += rng.sample(far, min(OTHER_EVIDENCE + 1 - len(src.evidence), len(far)))
        rng.shuffle(found)
        per_doc.append(found)
    picked: list[Source] = []
    while len(picked) < n_sentences and any(per_doc):
        for found in per_doc:
            if found and len(picked) < n_sentences:
                picked.append(found.pop())
    return picked, {"stats": dict(stats), "attested": attested, "chunk_concepts": chunk_concepts}


def make_variants(
    sources: list[Source], lexicon: Lexicon, linker: ConceptLinker, corpus: dict, seed: int
) -> list[Variant]:
    conditions = sorted(
        c
        for c in corpus["attested"]
        if c in lexicon.concepts
        and lexicon.category(c) == "condition"
        and simple_form(lexicon.concepts[c].name)
        and lexicon.concepts[c].name.lower() not in _GENERIC
    )
    drugs = sorted(c.id for c in lexicon.concepts.values() if lexicon.category(c.id) == "drug" and simple_form(c.name))
    variants: list[Variant] = []
    for index, src in enumerate(sources):
        rng = random.Random(f"{seed}:{src.doc}:{src.chunk.ordinal}:{src.start}")
        src.mentions = linker.link(src.plain)
        in_chunk = corpus["chunk_concepts"][src.chunk.id]
        context = f"{src.chunk.breadcrumb}\n{src.chunk.text}"
        made: list[Variant | None] = [Variant("faithful/verbatim", src.raw, src.chunk, index)]
        if src.plain != src.raw:
            made.append(
                Variant("faithful/plain", src.plain, src.chunk, index, "markers, emphasis and line breaks removed")
            )
        reordered = reorder(src.plain, src.chunk.text)
        if reordered:
            made.append(Variant("faithful/reordered", reordered[0], src.chunk, index, reordered[1], reordered[1]))
        made += [
            synonym(src, lexicon, rng),
            number(src, rng),
            concept_swap(src, "drug", drugs, lexicon, in_chunk, context, rng),
            concept_swap(src, "condition", conditions, lexicon, in_chunk, context, rng),
            negation(src),
            wrong_chunk(src, rng),
        ]
        for v in made:
            if v is None:
                continue
            if v.kind not in ("faithful/verbatim", "corrupt/wrong-chunk") and (
                v.text == src.raw or (v.kind != "faithful/plain" and v.text == src.plain)
            ):
                continue  # an operation that changed nothing
            v.source = index
            variants.append(v)
    return variants


# --- verification and report ------------------------------------------------------------------------


def cached_embedder(encoder) -> Callable[[list[str]], np.ndarray]:
    """The verifier's embed callable: batched, L2-normalised, remembered by text (the cited passages
    repeat across the variants of a sentence, as they would across the sentences of an answer)."""
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        if todo:
            vectors = encoder.encode(
                todo, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            cache.update(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    return embed


@dataclass
class Outcome:
    variant: Variant
    support: str
    reason: str | None
    similarity: float | None
    cites: list[tuple[int, int]]
    ms: float


def verify_all(verifier, variants: list[Variant], sources: list[Source]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for n, v in enumerate(variants, 1):
        src = sources[v.source]
        evidence = [ScoredChunk(chunk=c, row=i, score=1.0) for i, c in enumerate(src.evidence)]
        ref = SpanRef(chunk_id=v.cited.id, start=0, end=len(v.cited.text))
        draft = Draft(sentences=(DraftSentence(text=v.text, cites=(ref,)),))
        t = time.perf_counter()
        checked = verifier.run(draft, evidence=evidence)[0]
        ms = (time.perf_counter() - t) * 1000
        outcomes.append(
            Outcome(
                v,
                checked.support,
                checked.reason,
                getattr(checked, "similarity", None),
                [(c.start, c.end) for c in checked.cites],
                ms,
            )
        )
        if n % 500 == 0:
            print(f"verified {n}/{len(variants)}", file=sys.stderr, flush=True)
    return outcomes


def row_kind(v: Variant, split_swaps: bool) -> str:
    if v.kind.endswith("-swap") and not split_swaps:
        return "corrupt/concept-swap"
    return v.kind


def summarise(name: str, outs: list[Outcome], faithful: bool) -> dict:
    n = len(outs)
    counts = Counter(o.support for o in outs)
    flagged = (n - counts["supported"]) / n if n else 0.0
    strict = counts["unsupported"] / n if n else 0.0
    ok = flagged <= FALSE_ALARM_GOAL if faithful else flagged >= DETECTION_GOAL
    return {
        "type": name,
        "n": n,
        "supported": round(counts["supported"] / n, 4) if n else 0.0,
        "partial": round(counts["partial"] / n, 4) if n else 0.0,
        "unsupported": round(counts["unsupported"] / n, 4) if n else 0.0,
        "metric": "false_alarm" if faithful else "detection",
        "rate": round(flagged, 4),
        "strict_rate": round(strict, 4),
        "goal": f"<= {FALSE_ALARM_GOAL:.0%}" if faithful else f">= {DETECTION_GOAL:.0%}",
        "result": "PASS" if ok else "MISS",
        "median_ms": round(statistics.median(o.ms for o in outs), 2) if outs else None,
        "by_subkind": {} if name.startswith("all ") else _by_subkind(outs),
    }


def _by_subkind(outs: list[Outcome]) -> dict[str, dict[str, float | int]]:
    """n and flagged share per subkind (negation inserted or removed, number kind, wrong chunk adjacent or not)."""
    groups: dict[str, list[Outcome]] = {}
    for o in outs:
        if o.variant.subkind:
            groups.setdefault(o.variant.subkind, []).append(o)
    return {
        k: {"n": len(g), "flagged": round(sum(o.support != "supported" for o in g) / len(g), 4)}
        for k, g in sorted(groups.items())
    }


def reason_class(reason: str | None) -> str:
    """A verifier reason without its particulars, to count kinds of reasons."""
    if not reason:
        return "(none)"
    out = []
    for part in reason.split("; "):
        part = re.sub(r"'[^']*'( \([^)]*\))?", "'…'", part)
        part = re.sub(r"\d+(?:\.\d+)?", "N", part)
        out.append(re.split(r":\s|\s\(", part, maxsplit=1)[0].strip())
    return "; ".join(dict.fromkeys(out))[:120]


def _cut(text: str, limit: int = EXAMPLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def span_selection(o: Outcome, src: Source) -> str:
    """Where the verifier's evidence span lies relative to the source sentence in the chunk it cites: for a
    faithful rewording or a corruption of a sentence the right span is that sentence."""
    if o.variant.cited.id != src.chunk.id:
        return "other chunk"
    if not o.cites:
        return "no span"
    start, end = o.cites[0]
    if (start, end) == (src.start, src.end):
        return "own sentence"
    if start <= src.start and end >= src.end:
        return "own sentence and more"
    if end <= src.start or start >= src.end:
        return "another sentence"
    return "part of own sentence"


_STOP = frozenset(
    """a an the of in on at to for with by from and or but as is are was were be been has have had that this these
    those it its which who than then there their not no""".split()
)


def content_overlap(sentence: str, chunk: Chunk) -> float:
    """Largest share of the sentence's content words found in one sentence or adjacent pair of the chunk."""
    words = {w for w in re.findall(r"[a-z0-9]+", sentence.lower()) if w not in _STOP}
    if not words:
        return 0.0
    return max(len(words & set(re.findall(r"[a-z0-9]+", w.lower()))) / len(words) for w in _windows(chunk.text))


def misses_report(
    rows: dict[str, list[Outcome]], sources: list[Source], lexicon: Lexicon, linker: ConceptLinker, seed: int
) -> dict:
    rng = random.Random(seed)
    report: dict[str, dict] = {}
    budget = MAX_EXAMPLES
    for name, outs in rows.items():
        if name == "faithful/verbatim" and all(o.support == "supported" for o in outs):
            continue
        faithful = name.startswith("faithful")
        missed = [o for o in outs if (o.support != "supported") == faithful]
        entry: dict = {
            "n": len(outs),
            "missed": len(missed),
            "what": "faithful sentences flagged" if faithful else "corrupt sentences verdicted supported",
            "verdicts_of_missed": dict(Counter(o.support for o in missed)),
            "reasons_of_missed": dict(Counter(reason_class(o.reason) for o in missed).most_common()),
            "reasons_all": dict(Counter(reason_class(o.reason) for o in outs).most_common(8)),
            "subkinds_of_missed": dict(Counter(o.variant.subkind for o in missed if o.variant.subkind)),
            "span_selection_of_missed": dict(
                Counter(span_selection(o, sources[o.variant.source]) for o in missed).most_common()
            ),
            "examples": [],
        }
        for o in rng.sample(missed, min(EXAMPLES_PER_TYPE, len(missed), max(budget, 0))):
            v, src = o.variant, sources[o.variant.source]
            example = {
                "text": _cut(v.text),
                "change": _cut(v.change, 160),
                "verdict": o.support,
                "reason": _cut(o.reason or "", 240),
                "similarity": o.similarity,
                "doc": v.cited.doc_id,
                "cited_chunk": v.cited.ordinal,
                "section": _cut(v.cited.breadcrumb, 120),
                "verifier_spans": o.cites,
                "span_selection": span_selection(o, src),
                "source_sentence": [src.start, src.end],
                "words": {
                    "sentence": len(v.text.split()),
                    "verifier_span": sum(len(v.cited.text[a:b].split()) for a, b in o.cites),
                },
            }
            if v.kind == "corrupt/wrong-chunk":
                # Not used to choose variants: shows whether the other chunk restates the claim.
                example["content_overlap_with_cited_chunk"] = round(content_overlap(v.text, v.cited), 2)
            if "new_concept" in v.extra:
                new = v.extra["new_concept"]
                example["swapped_in_linked"] = any(m.concept_id == new for m in linker.link(v.text))
                example["swapped_in_types"] = list(lexicon.concepts[new].semantic_types)
            entry["examples"].append(example)
        budget -= len(entry["examples"])
        report[name] = entry
    return report


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("clinqa", "sentence-transformers", "transformers", "torch", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _git() -> dict[str, str | bool | None]:
    verify_py = REPO / "app" / "pipeline" / "verify.py"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "app/pipeline/verify.py", "app/config.py"],
                cwd=REPO,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    except OSError:
        head, dirty = None, None
    return {
        "commit": head or None,
        "verifier_uncommitted": dirty,
        "verify_py_sha256": hashlib.sha256(verify_py.read_bytes()).hexdigest()[:16] if verify_py.exists() else None,
    }


def print_table(console: Console, rows: list[dict], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("variant", "left"),
        ("n", "right"),
        ("supported", "right"),
        ("partial", "right"),
        ("unsupported", "right"),
        ("flagged: detection / false alarm", "right"),
        ("strict (unsupported only)", "right"),
        ("goal", "right"),
        ("", "left"),
        ("median ms", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        label = "detection" if r["metric"] == "detection" else "false alarm"
        style = "green" if r["result"] == "PASS" else "red"
        table.add_row(
            r["type"],
            str(r["n"]),
            f"{r['supported']:.1%}",
            f"{r['partial']:.1%}",
            f"{r['unsupported']:.1%}",
            f"{r['rate']:.1%} {label}",
            f"{r['strict_rate']:.1%}",
            r["goal"],
            f"[{style}]{r['result']}[/{style}]",
            f"{r['median_ms']:.1f}" if r["median_ms"] is not None else "-",
            end_section=r["type"] == "all faithful",
        )
    console.print(table)


def data_dir() -> Path:
    return Path(os.environ.get("CLINQA_DATA", REPO.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir(), help="Shared data folder (default $CLINQA_DATA).")
    parser.add_argument("--sentences", type=int, default=600, help="Source sentences to build variants from.")
    parser.add_argument("--docs", type=int, default=40, help="PDQ summaries to sample (0 = all 271).")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--vocabulary", type=Path, default=REPO / "corpus" / "demo" / "vocabulary.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "verifier.json")
    parser.add_argument(
        "--misses-out", type=Path, default=None, help="Examples of misses (default: verifier-misses.json beside --out)."
    )
    args = parser.parse_args()
    misses_out = args.misses_out or args.out.with_name(f"{args.out.stem}-misses.json")
    pdq_dir, doid = args.data / "nci" / "pdq", args.data / "ontology" / "doid-2018-07-05.json.gz"
    for needed in (pdq_dir, doid):
        if not needed.exists():
            print(f"skipped: data not found: {needed} (set CLINQA_DATA or pass --data)")
            return
    started = time.perf_counter()
    load_before = os.getloadavg()
    console = Console(width=None if sys.stdout.isatty() else 150)
    rng = random.Random(args.seed)

    t = time.perf_counter()
    demo = load_vocabulary(args.vocabulary)
    vocabulary = load_knowledge([args.vocabulary, doid])
    lexicon = Lexicon(vocabulary, {c.id for c in demo.concepts})
    linker = ConceptLinker(vocabulary.concepts, graph=KnowledgeGraph.build(vocabulary, []))
    vocabulary_s = time.perf_counter() - t

    t = time.perf_counter()
    encoder_settings = EncoderSettings()
    encoder = load_encoder(encoder_settings)
    chunk_settings = ChunkSettings()
    chunker = SectionChunker(chunk_settings, token_counter(encoder))
    files = sorted(pdq_dir.glob("*.md"))
    if args.docs and args.docs < len(files):
        files = sorted(rng.sample(files, args.docs))
    sources, corpus = load_sources(files, chunker, linker, args.sentences, rng)
    variants = make_variants(sources, lexicon, linker, corpus, args.seed)
    prepare_s = time.perf_counter() - t
    print(
        f"{len(sources)} sentences from {corpus['stats'].get('documents', 0)} documents, {len(variants)} variants "
        f"({prepare_s:.0f} s); verifying ...",
        file=sys.stderr,
        flush=True,
    )
    if len(sources) < args.sentences:
        print(f"note: only {len(sources)} prose sentences found; pass a larger --docs", file=sys.stderr)

    from app.pipeline.verify import CitationVerifier  # late: the module is where the work under test is

    verify_settings = VerifySettings()
    verifier = CitationVerifier(verify_settings, Analyzer(), linker=linker, embed=cached_embedder(encoder))
    verifier.load()
    t = time.perf_counter()
    outcomes = verify_all(verifier, variants, sources)
    verify_s = time.perf_counter() - t

    swap_counts = Counter(o.variant.subkind for o in outcomes if o.variant.kind.endswith("-swap"))
    split_swaps = min(swap_counts["drug"], swap_counts["condition"]) >= MIN_ROW
    by_row: dict[str, list[Outcome]] = {}
    order = [*FAITHFUL, *(CORRUPT if split_swaps else ("corrupt/number", "corrupt/concept-swap", *CORRUPT[3:]))]
    for name in order:
        by_row[name] = [o for o in outcomes if row_kind(o.variant, split_swaps) == name]
    by_row = {k: v for k, v in by_row.items() if v}
    rows = [summarise(name, outs, name.startswith("faithful")) for name, outs in by_row.items()]
    faithful_all = [o for o in outcomes if o.variant.kind.startswith("faithful")]
    corrupt_all = [o for o in outcomes if o.variant.kind.startswith("corrupt")]
    pos = sum(1 for r in rows if r["metric"] == "false_alarm")
    rows.insert(pos, summarise("all faithful", faithful_all, True))
    rows.append(summarise("all corrupt", corrupt_all, False))

    machine = f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})"
    print_table(
        console,
        rows,
        f"Citation verifier on {len(sources)} NCI PDQ sentences ({corpus['stats'].get('documents', 0)} summaries, "
        f"seed {args.seed}), {machine}",
    )
    times = [o.ms for o in outcomes]
    # Sentences that reached the encoder (the similarity check): the cost of a paraphrase, not of a quote
    # or of a corruption rejected by an earlier check.
    embedded = [o.ms for o in outcomes if o.similarity is not None and o.similarity < 1.0]
    console.print(
        f"median verification time per sentence: {statistics.median(times):.1f} ms "
        f"(p95 {sorted(times)[int(0.95 * (len(times) - 1))]:.1f} ms; {len(times)} sentences in {verify_s:.1f} s); "
        f"{statistics.median(embedded) if embedded else 0:.1f} ms for the {len(embedded)} that reached the "
        f"similarity check; load average {load_before[0]:.1f} at the start"
    )
    if not split_swaps:
        console.print(
            f"concept swaps in one row: {swap_counts['drug']} drug and {swap_counts['condition']} condition swaps "
            f"(separate rows need >= {MIN_ROW} of each)"
        )
    else:
        console.print(f"concept swaps: {swap_counts['drug']} drug, {swap_counts['condition']} condition")

    seconds = time.perf_counter() - started
    result = {
        "benchmark": "verifier",
        "machine": machine,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": _versions(),
        "code": _git(),
        "seed": args.seed,
        "config": {
            "sentences": args.sentences,
            "docs": args.docs,
            "data": "nci/pdq",
            "vocabulary": [
                str(args.vocabulary.relative_to(REPO))
                if args.vocabulary.is_relative_to(REPO)
                else str(args.vocabulary),
                "ontology/doid-2018-07-05.json.gz",
            ],
            "concepts": len(vocabulary.concepts),
            "drug_pool": sum(1 for c in lexicon.concepts if lexicon.category(c) == "drug"),
            "verify": verify_settings.model_dump(mode="json"),
            "chunk": chunk_settings.model_dump(mode="json"),
            "encoder": encoder_settings.model,
            "evidence_per_sentence": 1 + OTHER_EVIDENCE,
            "flagged": "verdict is not 'supported' (strict: verdict is 'unsupported')",
            "goals": {"detection": DETECTION_GOAL, "false_alarm": FALSE_ALARM_GOAL},
        },
        "counts": {
            **corpus["stats"],
            "sentences": len(sources),
            "variants": len(variants),
            "by_type": dict(Counter(v.kind for v in variants)),
            "concept_swaps": dict(swap_counts),
        },
        "rows": rows,
        "timing": {
            "median_ms_per_sentence": round(statistics.median(times), 2),
            "p95_ms_per_sentence": round(sorted(times)[int(0.95 * (len(times) - 1))], 2),
            "median_ms_reaching_similarity": round(statistics.median(embedded), 2) if embedded else None,
            "reaching_similarity": len(embedded),
            "verify_s": round(verify_s, 1),
            "vocabulary_s": round(vocabulary_s, 1),
            "prepare_s": round(prepare_s, 1),
            "total_s": round(seconds, 1),
            "load_average_1m": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
        },
    }
    misses = {
        "benchmark": "verifier",
        "note": "Missed cases per variant type: corrupt sentences the verifier called supported, faithful ones it "
        "flagged. Texts are cut to 200 characters; 'doc' is the PDQ file name under nci/pdq, 'cited_chunk' the "
        "chunk's ordinal with the default chunk settings, 'verifier_spans' the spans (character offsets in that chunk) "
        "the verifier judged against, 'source_sentence' where the sentence the variant was made from stands in its "
        "own chunk, 'span_selection' how the two relate.",
        "code": result["code"],
        "seed": args.seed,
        "types": misses_report(by_row, sources, lexicon, linker, args.seed),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    misses_out.write_text(json.dumps(misses, indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {args.out} and {misses_out} in {seconds:.0f} s")


if __name__ == "__main__":
    main()

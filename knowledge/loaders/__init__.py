"""Vocabulary loaders, one module per source format, each returning a `Vocabulary` (or, for
abbreviations, an `AbbreviationInventory`); malformed input raises `VocabularyError` naming the file
and line.

- `umls_rrf`: the UMLS Metathesaurus (MRCONSO, MRSTY, MRREL; licensed, so never shipped)
- `obo_graph`: OBO Graph JSON ontologies such as the Human Disease Ontology
- `sssom`: SSSOM mapping files, concepts from mappings, and merging vocabularies through mappings
- `abbreviations`: clinical abbreviation sense inventories (Wikipedia list, ADAM)
"""

from knowledge.loaders.abbreviations import AbbreviationInventory, AbbreviationSense, load_abbreviation_inventory
from knowledge.loaders.obo_graph import load_obo_graph_json
from knowledge.loaders.sssom import Mapping, load_sssom, merge_vocabularies, vocabulary_from_sssom
from knowledge.loaders.umls_rrf import load_umls_rrf
from knowledge.vocabulary import VocabularyError

__all__ = [
    "AbbreviationInventory",
    "AbbreviationSense",
    "Mapping",
    "VocabularyError",
    "load_abbreviation_inventory",
    "load_obo_graph_json",
    "load_sssom",
    "load_umls_rrf",
    "merge_vocabularies",
    "vocabulary_from_sssom",
]

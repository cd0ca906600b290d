"""UMLS-style concept model: concepts keyed by CUI (or the source's own id), typed relations."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RelationType = Literal["isa", "may_treat", "may_prevent", "has_symptom", "diagnosed_by", "related_to"]


class Concept(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="UMLS CUI (C0020538) or a source id (CLINQA:cha2ds2-vasc).")
    name: str = Field(min_length=1, description="Preferred name.")
    semantic_types: tuple[str, ...] = Field(default=(), description="UMLS semantic type ids (T047, ...).")
    synonyms: tuple[str, ...] = ()
    abbreviations: tuple[str, ...] = ()
    xrefs: tuple[str, ...] = Field(default=(), description="Ids of the same concept elsewhere: DOID:9352, MONDO:...")
    sources: tuple[str, ...] = Field(default=(), description="Vocabularies the concept came from: DOID, MONDO, ...")


class Relation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    type: RelationType
    target: str


class Vocabulary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "1"
    disclaimer: str | None = None
    semantic_types: dict[str, str] = Field(default_factory=dict)
    concepts: tuple[Concept, ...] = ()
    relations: tuple[Relation, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Vocabulary:
        seen: set[str] = set()
        for concept in self.concepts:
            if concept.id in seen:
                raise ValueError(f"duplicate concept id {concept.id!r}")
            seen.add(concept.id)
        for rel in self.relations:
            for end in (rel.source, rel.target):
                if end not in seen:
                    raise ValueError(f"relation {rel.source} {rel.type} {rel.target}: unknown concept {end!r}")
        return self

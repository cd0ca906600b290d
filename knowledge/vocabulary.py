"""Load clinqa's own YAML vocabulary (see corpus/demo/vocabulary.yaml for the format)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge.schema import Vocabulary


class VocabularyError(Exception):
    """A vocabulary file that cannot be used; the message names the file and the problem."""


def load_vocabulary(path: Path) -> Vocabulary:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VocabularyError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise VocabularyError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise VocabularyError(f"{path}: expected a mapping with 'concepts' and 'relations'")
    try:
        return Vocabulary.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise VocabularyError(f"{path}: {where}: {first['msg']}") from exc

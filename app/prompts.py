"""Versioned prompt templates from `prompts/`, with their placeholders checked when loaded."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"


class PromptError(ValueError):
    """A template that is missing or whose placeholders do not match what the stage fills in."""


@dataclass(frozen=True)
class Prompt:
    task: str
    version: int
    template: str

    @property
    def id(self) -> str:
        return f"{self.task}.v{self.version}"

    def render(self, **values: str) -> str:
        return self.template.format(**values)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_prompt(task: str, version: int, required: set[str], directory: Path = PROMPTS_DIR) -> Prompt:
    path = directory / f"{task}.v{version}.txt"
    try:
        template = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"prompt {task}.v{version} not found at {path}") from exc
    try:
        found = placeholders(template)
    except ValueError as exc:
        raise PromptError(f"{path}: malformed placeholder ({exc})") from exc
    if found != required:
        raise PromptError(f"{path}: placeholders {sorted(found)} do not match the required {sorted(required)}")
    return Prompt(task, version, template)

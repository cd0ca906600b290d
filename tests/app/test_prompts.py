import pytest

from app.prompts import PromptError, load_prompt

pytestmark = pytest.mark.unit


def test_answer_template_loads_and_renders():
    prompt = load_prompt("answer", 1, {"question", "evidence"})
    text = prompt.render(question="Q?", evidence="[1] passage")
    assert prompt.id == "answer.v1" and "Q?" in text and "[1] passage" in text


def test_placeholder_mismatch_and_missing_template(tmp_path):
    (tmp_path / "answer.v1.txt").write_text("only {question}")
    with pytest.raises(PromptError, match="do not match"):
        load_prompt("answer", 1, {"question", "evidence"}, directory=tmp_path)
    with pytest.raises(PromptError, match="not found"):
        load_prompt("answer", 9, {"question"}, directory=tmp_path)

"""LIMA-Role rows with *templated* role prompts, for tests and offline demos of training.

The real LIMA-Role comes from `selfprompt annotate` (a teacher LLM writes each role prompt).
When no teacher is at hand, these rows let training run end to end: the role prompt is built
deterministically from the question (an expert in a topic word drawn from it), and the
annotation block says so (teacher "template:topic-word"), so such rows are never mistaken for
teacher output.

    python -m selfprompt.train.template_roles ../shared/data/lima/train.jsonl runs/lima-role-template.jsonl
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from selfprompt.jsonl import iter_json_lines, write_records
from selfprompt.records import Annotation, RoleExample

TEACHER = "template:topic-word"
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")
_STOP = {
    "what", "which", "when", "where", "would", "could", "should", "there", "their", "about", "with", "from",
    "that", "this", "have", "does", "your", "into", "write", "give", "tell", "explain", "please", "some",
    "them", "they", "been", "were", "will", "like", "make", "best", "know", "want", "using", "other",
}


def topic_of(question: str) -> str:
    """The longest non-stop word of the question: crude, deterministic, usually on topic."""
    words = [w.lower() for w in _WORD.findall(question) if w.lower() not in _STOP]
    return max(words, key=len) if words else "general knowledge"


def role_prompt_for(question: str) -> str:
    topic = topic_of(question)
    return (
        f"From now on, you are an expert in {topic}. You explain {topic} clearly and accurately, "
        "and you answer the question step by step."
    )


def lima_template_roles(lima_path: str | Path) -> list[RoleExample]:
    rows = []
    for index, (line, obj) in enumerate(iter_json_lines(lima_path)):
        question, answer = obj["conversations"][0], obj["conversations"][1]
        rows.append(RoleExample(
            id=f"lima-{index:04d}", question=question, answer=answer, source="lima",
            role_prompt=role_prompt_for(question),
            annotation=Annotation(teacher=TEACHER, template="topic-word", template_version="1", status="ok"),
        ))
    return rows


if __name__ == "__main__":
    write_records(sys.argv[2], lima_template_roles(sys.argv[1]))

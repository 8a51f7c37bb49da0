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

from selfprompt.data.loaders import load_examples
from selfprompt.jsonl import write_records
from selfprompt.records import Annotation, RoleExample

TEACHER = "template:topic-word"
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")
_STOP = {
    "what",
    "which",
    "when",
    "where",
    "would",
    "could",
    "should",
    "there",
    "their",
    "about",
    "with",
    "from",
    "that",
    "this",
    "have",
    "does",
    "your",
    "into",
    "write",
    "give",
    "tell",
    "explain",
    "please",
    "some",
    "them",
    "they",
    "been",
    "were",
    "will",
    "like",
    "make",
    "best",
    "know",
    "want",
    "using",
    "other",
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
    """One row per LIMA row of a GAIR/lima-format file, read (and its ids made) as every other stage does."""
    return [
        RoleExample(
            **example.model_dump(),
            role_prompt=role_prompt_for(example.question),
            annotation=Annotation(teacher=TEACHER, template="topic-word", template_version="1", status="ok"),
        )
        for example in load_examples(str(lima_path))
    ]


if __name__ == "__main__":
    write_records(sys.argv[2], lima_template_roles(sys.argv[1]))

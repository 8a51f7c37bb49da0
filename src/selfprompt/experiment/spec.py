"""The experiment file (`experiments/NAME.yaml`): every stage of the study and its settings.

Models of later stages are named either as a model spec ("default", a folder, a hub id) or as
`train:MODE` — the model that this experiment's train stage produced in that mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfprompt.errors import ConfigError, DataError
from selfprompt.evaluate.judge import VerdictFormat


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnnotateSection(Section):
    data: str = Field(default="lima", description="'lima' (the mirror's LIMA) or a path to an instruction JSONL file.")
    limit: int | None = Field(default=None, ge=1, description="Annotate only the first N rows.")
    teacher: str = Field(default="default", description="Teacher model (server model name for backend openai).")
    backend: str = Field(default="llamacpp", description="Teacher backend: openai | hf | llamacpp.")
    base_url: str | None = Field(default=None, description="openai backend: the server's base URL.")
    api_key_env: str | None = Field(default=None, description="openai backend: environment variable holding the key.")
    max_tokens: int | None = Field(default=None, ge=1, description="Override the template's max_tokens.")
    extra_args: list[str] = Field(default_factory=list, description="More `selfprompt annotate` arguments, verbatim.")


class TrainSection(Section):
    recipe: str = Field(description="Recipe YAML (relative to the experiment file's repository or absolute).")
    modes: list[str] = Field(default=["self-prompt", "baseline"], description="Models to train; identical but for the mode.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="key=value overrides of the recipe, both modes.")


class EvalSystem(Section):
    model: str = Field(description="'train:self-prompt', 'train:baseline' or any model spec.")
    conditions: list[str] = Field(description="Conditions to evaluate this model under.")


class EvalSection(Section):
    tasks: list[str] = Field(description="Task names (see `selfprompt eval tasks`).")
    systems: dict[str, EvalSystem] = Field(description="Label -> model and conditions; one eval folder per label.")
    limit: int | None = Field(default=None, ge=1, description="Items per task (seeded subset).")
    backend: str = Field(default="hf", description="Backend of the models under test (LoRA adapters need hf).")
    max_tokens: int = Field(default=256, ge=1, description="New tokens per answer.")
    extra_args: list[str] = Field(default_factory=list, description="More `selfprompt eval` arguments, verbatim.")


class AnswerSystem(Section):
    model: str = Field(description="'train:MODE' or a model spec.")
    condition: str = Field(description="Condition the open-ended questions are asked under.")


class AnswersSection(Section):
    questions: str = Field(default="vicuna_bench", description="vicuna_bench | mt_bench | path to a JSONL of questions.")
    systems: dict[str, AnswerSystem] = Field(description="Label -> model and condition.")
    limit: int | None = Field(default=None, ge=1, description="First N questions.")
    backend: str = Field(default="hf", description="Backend of the answering models.")
    max_tokens: int = Field(default=256, ge=1, description="New tokens per answer.")


class JudgeSection(Section):
    a: str = Field(description="Answers label judged as A (results are from A's side).")
    b: str = Field(description="Answers label judged as B.")
    judge: str = Field(default="default", description="Judge model (server model name for backend openai).")
    backend: str = Field(default="llamacpp", description="Judge backend: openai | hf | llamacpp.")
    base_url: str | None = Field(default=None, description="openai backend: the judge server's base URL.")
    api_key_env: str | None = Field(default=None, description="openai backend: environment variable holding the key.")
    max_tokens: int = Field(default=384, ge=1, description="Judge reply length limit.")
    verdict_format: VerdictFormat = Field(
        default="tags", description="tags: [[A]]/[[B]]/[[C]] last line (strong judges); json: schema-constrained "
        "verdict (small judges; llamacpp backend or a server with structured output).")
    extra_args: list[str] = Field(default_factory=list, description="More `selfprompt judge` arguments, verbatim.")


class Experiment(Section):
    name: str = Field(description="Short name; the default output folder is runs/NAME.")
    title: str | None = Field(default=None, description="Report title.")
    out: str | None = Field(default=None, description="Output root (default runs/NAME, relative to the current folder).")
    data_dir: str | None = Field(default=None, description="Data mirror (default $SELFPROMPT_DATA_DIR).")
    seed: int = Field(default=0, description="Seed passed to every stage that samples or subsets.")
    baseline: str = Field(default="baseline", description="Eval label every other system is compared with in the "
                          "report (its system must be one: give the label of an eval system with one condition).")
    annotate: AnnotateSection | None = Field(default=None, description="Omit to skip (then train needs no annotate).")
    train: TrainSection | None = None
    eval: EvalSection | None = None
    answers: AnswersSection | None = None
    judge: JudgeSection | None = None
    report: bool = Field(default=True, description="Write the report at the end.")

    @model_validator(mode="after")
    def _baseline_is_an_eval_label(self) -> "Experiment":
        # The report compares every system with the baseline; with several systems it must be one of them.
        if self.eval and len(self.eval.systems) > 1 and self.baseline not in self.eval.systems:
            raise ValueError(f"baseline '{self.baseline}' is not a label under eval.systems "
                             f"({', '.join(self.eval.systems)})")
        return self

    def baseline_label(self) -> str | None:
        """The eval label the report compares with, or None when the experiment evaluates no such label."""
        return self.baseline if self.eval and self.baseline in self.eval.systems else None


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Experiment:
    """Read an experiment YAML; `a.b=value` overrides are applied before validation."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, None, "experiment file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise DataError(str(path), None if line is None else line + 1, None, f"invalid YAML: {e}") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' is not KEY=VALUE (e.g. eval.limit=5)")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    try:
        return Experiment.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        raise DataError(str(path), None, ".".join(str(p) for p in first["loc"]), first["msg"]) from None

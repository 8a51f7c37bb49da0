"""The experiment file (`experiments/NAME.yaml`): every stage of the study and its settings.

Models of later stages are named either as a model spec ("default", a folder, a hub id) or as
`train:MODE` — the model that this experiment's train stage produced in that mode.
"""

from __future__ import annotations

from copy import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from selfprompt.annotate.run import AnnotateConfig
from selfprompt.errors import ConfigError, DataError, error_field
from selfprompt.evaluate.judge import AnswersConfig, JudgeConfig
from selfprompt.evaluate.runner import EvalConfig


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A stage section IS the stage's config (the fields of `selfprompt annotate`, `eval`, `judge answers`,
# `judge`, with the same names, types and defaults), less the fields the runner sets itself, plus the
# parts only an experiment has (`systems`, answers labels). RUNNER_SETS lists those fields per stage:
# `out` is the stage folder, `data_dir` and `seed` come from the experiment, a system gives model and
# condition(s), and the judge's a and b are answers labels that the runner turns into their folders.
RUNNER_SETS: dict[str, tuple[str, ...]] = {
    "annotate": ("out", "data_dir", "seed"),
    "eval": ("out", "data_dir", "seed", "model", "conditions"),
    "answers": ("out", "data_dir", "seed", "model", "condition"),
    "judge": ("out", "seed", "a", "b"),
}
STAGE_CONFIGS: dict[str, type[BaseModel]] = {
    "annotate": AnnotateConfig,
    "eval": EvalConfig,
    "answers": AnswersConfig,
    "judge": JudgeConfig,
}


def stage_section(stage: str, name: str, doc: str, **own: Any) -> type[Section]:
    """The experiment section of `stage`: its config's fields (declared once, in the config) but those in
    RUNNER_SETS, plus `own` fields as (annotation, Field)."""
    config = STAGE_CONFIGS[stage]
    fields: dict[str, Any] = {
        n: (f.annotation, copy(f))
        for n, f in config.model_fields.items()
        if n not in RUNNER_SETS[stage] and n not in own
    }
    fields.update(own)
    return create_model(name, __base__=Section, __doc__=doc, **fields)


AnnotateSection = stage_section(
    "annotate", "AnnotateSection", "The annotate stage: the fields of `selfprompt annotate` (AnnotateConfig)."
)


# Launch settings that only say where the processes meet: they never change the trained model, so they are
# left out of the stage key, and a node of a multi-node job may override them (`train.launch.machine_rank=1`).
MACHINES_HINT = (
    "; a job across several machines needs train.launch.num_machines (and num_processes, the total over all "
    "machines) in the experiment file, as recipes/slurm/train.sbatch says"
)
LAUNCH_PLACEMENT = ("machine_rank", "main_process_ip", "main_process_port")


class LaunchSection(Section):
    """How the runner starts a train stage: `accelerate launch [these flags] -m selfprompt.train ...`.
    Values left unset come from the accelerate config file (accelerate's own defaults without one)."""

    config_file: str | None = Field(
        default=None,
        description="Accelerate config file: a shipped one by name (deepspeed-zero3, fsdp, cpu-2proc: "
        "recipes/accelerate/NAME.yaml) or a path. Its content is part of the stage key. None: accelerate's "
        "torchrun launcher (`--multi_gpu`), which runs DDP on GPUs and over gloo on a CPU-only machine.",
    )
    num_processes: int | None = Field(
        default=None,
        ge=1,
        description="Total processes over all machines (accelerate's meaning): the data-parallel world size. "
        "None: the config file's; required without one.",
    )
    num_machines: int | None = Field(
        default=None, ge=1, description="Machines (nodes) the stage runs on. None: the config file's, else 1."
    )
    mixed_precision: Literal["no", "fp16", "bf16", "fp8"] | None = Field(
        default=None,
        description="Accelerate's mixed precision (no, fp16, bf16, fp8). None: the config file's, else 'no' "
        "(then the recipe's `precision` decides).",
    )
    machine_rank: int = Field(
        default=0,
        ge=0,
        description="This machine's rank, 0 to num_machines-1; only rank 0 marks the stage done. Set per node "
        "(recipes/slurm/train.sbatch does); not part of the key.",
    )
    main_process_ip: str | None = Field(
        default=None, description="Address of machine rank 0; needed with several machines. Not part of the key."
    )
    main_process_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on machine rank 0 where the processes meet. None: a free port on one machine, "
        "accelerate's default (29500) on several. Not part of the key.",
    )

    @model_validator(mode="after")
    def _rank_is_a_machine(self) -> LaunchSection:
        if self.num_machines is not None and self.machine_rank >= self.num_machines:
            raise ValueError(
                f"machine_rank {self.machine_rank} is not below num_machines {self.num_machines}" + MACHINES_HINT
            )
        return self


class TrainSection(Section):
    recipe: str = Field(description="Recipe YAML (relative to the experiment file's repository or absolute).")
    modes: list[str] = Field(
        default=["self-prompt", "baseline"], description="Models to train; identical but for the mode."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="key=value overrides of the recipe, both modes."
    )
    launch: LaunchSection | None = Field(
        default=None,
        description="Start each train stage under `accelerate launch` (several processes, GPUs, machines). "
        "None: one process, as `selfprompt train`.",
    )


class EvalSystem(Section):
    model: str = Field(description="'train:self-prompt', 'train:baseline' or any model spec.")
    conditions: list[str] = Field(description="Conditions to evaluate this model under.")


EvalSection = stage_section(
    "eval",
    "EvalSection",
    "The eval stages: the fields of `selfprompt eval` (EvalConfig); one eval per system.",
    systems=(dict[str, EvalSystem], Field(description="Label -> model and conditions; one eval folder per label.")),
)


class AnswerSystem(Section):
    model: str = Field(description="'train:MODE' or a model spec.")
    condition: str = Field(description="Condition the open-ended questions are asked under.")


AnswersSection = stage_section(
    "answers",
    "AnswersSection",
    "The answers stages: the fields of `selfprompt judge answers` (AnswersConfig).",
    systems=(dict[str, AnswerSystem], Field(description="Label -> model and condition.")),
)

JudgeSection = stage_section(
    "judge",
    "JudgeSection",
    "The judge stage: the fields of `selfprompt judge` (JudgeConfig); a and b are labels.",
    a=(str, Field(description="Answers label judged as A (results are from A's side).")),
    b=(str, Field(description="Answers label judged as B.")),
)


class Experiment(Section):
    name: str = Field(description="Short name; the default output folder is runs/NAME.")
    title: str | None = Field(default=None, description="Report title.")
    out: str | None = Field(
        default=None, description="Output root (default runs/NAME, relative to the current folder)."
    )
    data_dir: str | None = Field(default=None, description="Data mirror (default $SELFPROMPT_DATA_DIR).")
    seed: int = Field(default=0, description="Seed passed to every stage that samples or subsets.")
    baseline: str = Field(
        default="baseline",
        description="Eval label every other system is compared with in the "
        "report (its system must be one: give the label of an eval system with one condition).",
    )
    annotate: AnnotateSection | None = Field(  # type: ignore[valid-type]
        default=None, description="Omit to skip (then train needs no annotate)."
    )
    train: TrainSection | None = None
    eval: EvalSection | None = None  # type: ignore[valid-type]
    answers: AnswersSection | None = None  # type: ignore[valid-type]
    judge: JudgeSection | None = None  # type: ignore[valid-type]
    report: bool = Field(default=True, description="Write the report at the end.")

    @model_validator(mode="after")
    def _baseline_is_an_eval_label(self) -> Experiment:
        # The report compares every system with the baseline; with several systems it must be one of them.
        if self.eval and len(self.eval.systems) > 1 and self.baseline not in self.eval.systems:
            raise ValueError(
                f"baseline '{self.baseline}' is not a label under eval.systems ({', '.join(self.eval.systems)})"
            )
        return self

    def baseline_label(self) -> str | None:
        """The eval label the report compares with, or None when the experiment evaluates no such label."""
        return self.baseline if self.eval and self.baseline in self.eval.systems else None


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Experiment:
    """Read an experiment YAML; `a.b=value` overrides are applied before validation."""
    path = Path(path)
    if path.is_dir():
        raise DataError(str(path), None, None, "is a folder, not an experiment YAML file")
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
        where = error_field(first)
        source = f"{path} (override {where}=...)" if any(o.partition("=")[0] == where for o in overrides) else str(path)
        raise DataError(source, None, where, first["msg"] + _extra_key_hint(first)) from None


def _extra_key_hint(error: dict[str, Any]) -> str:
    """For an unknown key: what replaces `extra_args`, or the valid keys of its section."""
    if error["type"] != "extra_forbidden":
        return ""
    *section, key = error["loc"]
    if key == "extra_args":
        return (
            "; extra_args is gone: write each setting as a key of the section (e.g. `max_chars: 600`, "
            "`max_attempts: 2`; `selfprompt <stage> --help` lists them)"
        )
    model: type[BaseModel] = Experiment
    for part in section:
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        inner = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = [a for a in inner if issubclass(a, BaseModel)]
        if not nested:
            return ""
        model = nested[0]
    return f"; valid keys: {', '.join(model.model_fields)}"

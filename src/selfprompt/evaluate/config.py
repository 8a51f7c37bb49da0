"""The settings of `selfprompt eval` (EvalConfig): one documented model behind its options, its --config file and
an experiment's `eval:` section."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from selfprompt.format import DEFAULT_FORMAT
from selfprompt.generate.backends import ModelSettings
from selfprompt.generate.conditions import CONDITIONS, DEFAULT_CONDITION

TRIGGER_MAX_TOKENS = 32  # the answer after a trigger is a few tokens (Kojima et al. used 32)


class EvalConfig(ModelSettings):
    """Everything that defines an eval run: the options of `selfprompt eval`, its --config file, and an
    experiment's `eval:` section (whose systems set model and conditions). Recorded in the manifest."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(
        description="Comma-separated task names (see `selfprompt eval tasks`).",
        json_schema_extra={"cli": {"split": ","}},
    )
    conditions: list[str] = Field(
        default_factory=lambda: [DEFAULT_CONDITION],
        description="Comma-separated prompting conditions: " + ", ".join(CONDITIONS) + ".",
        json_schema_extra={"cli": {"split": ","}},
    )
    data_dir: str | None = Field(default=None, description="Local data mirror (default: $SELFPROMPT_DATA_DIR).")
    out: str = Field(
        default="runs/eval",
        description="Output folder, one run per folder: rerunning with the same "
        "tasks, conditions, limit and seed resumes; others are refused unless overwrite.",
    )
    task_files: list[str] = Field(
        default_factory=list,
        description="Extra task YAML file (repeatable).",
        json_schema_extra={"cli": {"flags": ["--task-file"], "repeat": True}},
    )
    limit: int | None = Field(default=None, ge=1, description="Items per task (a seeded random subset); None = all.")
    seed: int | None = Field(
        default=0, description="Seed of the item subset (None = the first `limit` items) and of bootstrap resampling."
    )
    max_tokens: int = Field(default=256, ge=1, description="New tokens for the answering turn.")
    trigger_max_tokens: int = Field(default=TRIGGER_MAX_TOKENS, ge=1, description="New tokens after the trigger.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 = greedy.")
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Items per generate call and per cache append; unset: the backend's own batch size "
        "(hf chooses it from free memory and the model's KV cache size), 8 for the others.",
    )
    format: str = Field(default=DEFAULT_FORMAT.id, description="Self-prompt format used to parse roles.")
    no_trigger: bool = Field(
        default=False,
        description="Skip the second-pass trigger (regex extractors only).",
        json_schema_extra={"cli": {"flags": ["--no-trigger"]}},
    )
    sandbox_timeout_s: float = Field(default=10.0, gt=0, description="Wall time per HumanEval program, in seconds.")
    bootstrap_resamples: int = Field(default=2000, ge=100, description="Resamples for confidence intervals.")
    overwrite: bool = Field(
        default=False,
        description="Replace a run with another scope (tasks, conditions, "
        "limit, seed) already in `out` instead of refusing; the content-keyed generation cache "
        "is kept.",
        json_schema_extra={"cli": {"flags": ["--overwrite"]}},
    )

"""Every command line in README.md and docs/*.md works as written, and every relative link resolves.

Command lines are read from the fenced code blocks (a trailing backslash continues a line, `&&`
chains are split, `# ...` comments dropped). Each one must have an entry in COMMANDS, so that a new
command in the docs fails this test until someone decides how to check it:

* Run(...): run for real in a scratch folder (recipes/ and experiments/ linked in), at small sizes:
  `replace` swaps an argument of the docs' line for a smaller one (--limit 20 -> --limit 1) and
  `append` adds limits (--max-tokens 8); `setup` writes the input files the line names.
* Parse(reason): cannot run here (a paid API, a GPU, a server that runs until stopped, a model that
  takes minutes to train); its options are parsed against the real command, without running it, and
  the repository files it names must exist.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SELFPROMPT = str(Path(sys.executable).parent / "selfprompt")
SMALL = ["--max-tokens", "8"]


def answers_files(work: Path) -> None:
    """Two tiny answer sets for the judge lines."""
    for name, answer in (("answers_sp", "Use a calendar and short breaks."), ("answers_base", "Sleep more.")):
        row = {"id": "1", "question": "How can I improve my time management skills?", "answer": answer}
        (work / f"{name}.jsonl").write_text(json.dumps(row) + "\n")


def eval_config(work: Path) -> None:
    """The config file docs/foundation.md writes with printf just before its `--config` line."""
    (work / "eval.yaml").write_text("tasks: [gsm8k]\nlimit: 2\nmax_tokens: 64\n")


def predictions(work: Path) -> None:
    row = {"task": "gsm8k", "id": "gsm8k-0", "output": "The answer is 18."}
    (work / "preds.jsonl").write_text(json.dumps(row) + "\n")


@dataclass(frozen=True)
class Run:
    append: tuple[str, ...] = ()
    replace: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class Parse:
    reason: str


NEEDS_TUNED = "needs a self-prompt model trained by `selfprompt train` (minutes; tests/test_train_run.py trains one)"
PAID_API = "a paid API (OpenAI key)"
SERVER = "needs an OpenAI-compatible server running (tests/test_ask.py and test_judge.py start llama.cpp's)"
TRAINS = "trains for minutes (tests/test_train_run.py trains for real)"

# The command as the docs state it (continuations joined, comment dropped, spaces collapsed) -> how it is checked.
COMMANDS: dict[str, Run | Parse] = {
    # README.md
    "make demo": Parse("the whole demo study, ~15 minutes (tests/test_experiment.py runs a tiny experiment)"),
    "make test": Parse("the test suite itself"),
    'selfprompt ask --condition icl-self-prompt "Why is the sky blue?"': Run(append=tuple(SMALL)),
    "selfprompt annotate --data lima --limit 64 --teacher default --backend llamacpp --out lima_role.jsonl": Run(
        replace={"64": "1"}, append=("--max-tokens", "16", "--max-attempts", "1", "--no-progress")
    ),
    "selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml data=lima_role.jsonl mode=self-prompt "
    "output_dir=runs/sp": Parse(TRAINS),
    'selfprompt ask --condition self-prompt --model runs/sp "How do magnets work?"': Parse(NEEDS_TUNED),
    "selfprompt eval --model default --tasks gsm8k,strategyqa,mmlu --conditions plain,icl-self-prompt --limit 20": Run(
        replace={"20": "1"}, append=(*SMALL, "--trigger-max-tokens", "4")
    ),
    "selfprompt judge answers --model runs/sp --condition self-prompt --questions vicuna_bench --limit 10 "
    "--out answers_sp.jsonl": Parse(NEEDS_TUNED),
    "selfprompt judge answers --model default --condition plain --questions vicuna_bench --limit 10 "
    "--out answers_base.jsonl": Run(replace={"10": "1"}, append=tuple(SMALL)),
    "selfprompt judge --a answers_sp.jsonl --b answers_base.jsonl --judge default --judge-backend llamacpp "
    "--verdict-format json --out runs/judge": Run(
        append=("--max-tokens", "48", "--max-verdict-attempts", "1"), setup=answers_files
    ),
    "selfprompt run experiments/demo.yaml": Run(append=("--dry-run",)),
    "selfprompt report runs/demo": Parse("needs the finished demo study (tests/test_report.py renders a report)"),
    "selfprompt serve --model runs/sp": Parse(NEEDS_TUNED + "; and a server runs until stopped"),
    # docs/annotate.md
    "selfprompt annotate --data lima --teacher gpt-4o --out runs/lima_role.jsonl --concurrency 16 "
    "--rpm 500 --tpm 200000 --price-in 2.5 --price-out 10": Parse(PAID_API),
    "selfprompt annotate --data lima --teacher meta-llama/Llama-3.1-70B-Instruct "
    "--base-url http://gpu-box:8000/v1 --json --out runs/lima_role.jsonl": Parse("a 70B model on a GPU server"),
    # the line of issue 12's acceptance: offline, the backend inferred from the model
    "selfprompt annotate --data lima --limit 4 --teacher default --out runs/lima_role.jsonl": Run(
        replace={"4": "1"}, append=("--max-tokens", "16", "--max-attempts", "1", "--no-progress")
    ),
    "selfprompt annotate --data my.jsonl --field-map question=instruction,answer=output --teacher gpt-4o "
    "--out my_role.jsonl": Parse(PAID_API),
    ".venv/bin/pytest tests/test_reliable.py tests/test_annotate_validate.py tests/test_annotate.py": Parse(
        "the tests themselves"
    ),
    ".venv/bin/python bench/annotate.py": Parse("a benchmark (minutes)"),
    ".venv/bin/python bench/annotate.py --server llamacpp": Parse("a benchmark (minutes)"),
    "selfprompt annotate --data lima --teacher gpt-4o --out runs/lima_role.jsonl --dry-run --price-in 2.5 "
    "--price-out 10": Run(append=("--limit", "2")),
    # docs/evaluate.md
    "selfprompt eval --model default --tasks gsm8k,strategyqa,mmlu --conditions plain,icl-self-prompt --limit 20 "
    "--out runs/eval": Run(replace={"20": "1"}, append=(*SMALL, "--trigger-max-tokens", "4")),
    "selfprompt eval --model runs/train/self-prompt --tasks gsm8k,mmlu "
    "--conditions self-prompt,self-prompt-no-role": Parse(NEEDS_TUNED),
    "selfprompt eval --model runs/train/plain-lima --tasks gsm8k,mmlu --conditions plain": Parse(
        "needs a baseline model trained by `selfprompt train` (minutes)"
    ),
    "selfprompt eval --backend openai --base-url http://127.0.0.1:8000/v1 --model my-model --tasks gsm8k": Parse(
        SERVER
    ),
    "selfprompt eval score --predictions preds.jsonl --out runs/preds-scores": Run(setup=predictions),
    "selfprompt eval tasks": Run(),
    # docs/serving.md
    "selfprompt eval --model default --tasks gsm8k --limit 2 --no-trigger --server llamacpp --out runs/eval-served": Run(
        replace={"2": "1"}, append=tuple(SMALL)
    ),
    "selfprompt run experiments/paper-mistral-7b.yaml --dry-run": Run(),
    # docs/foundation.md
    "selfprompt eval --config eval.yaml --out runs/eval-cfg --limit 1 trigger_max_tokens=8": Run(
        append=("max_tokens=8",),
        setup=eval_config,  # overrides come last
    ),
    'selfprompt ask "Why is the sky blue?"': Run(append=tuple(SMALL)),
    'selfprompt ask --backend llamacpp "Why is the sky blue?"': Run(append=tuple(SMALL)),
    'selfprompt ask --condition self-prompt --model runs/sp-lora "How do magnets work?"': Parse(NEEDS_TUNED),
    'selfprompt ask --backend openai --base-url http://127.0.0.1:8000/v1 --model default --json "q1" "q2"': Parse(
        SERVER
    ),
    ".venv/bin/pytest tests/test_format.py tests/test_models.py tests/test_data.py tests/test_backends.py "
    "tests/test_ask.py tests/test_cpu_linear.py": Parse("the tests themselves"),
    ".venv/bin/python bench/generate.py": Parse("a benchmark (minutes)"),
    ".venv/bin/python bench/decode_linears.py": Parse("a benchmark (minutes)"),
    # docs/judge-run-report.md
    "selfprompt run experiments/demo.yaml --dry-run": Run(),
    "selfprompt run experiments/demo.yaml eval.limit=5": Run(append=("--dry-run",)),
    "selfprompt run experiments/paper-mistral-7b.yaml --stage annotate": Parse(PAID_API),
    "selfprompt judge answers --model runs/x/model --condition self-prompt --questions vicuna_bench --limit 10 "
    "--out runs/sp-answers": Parse(NEEDS_TUNED),
    "selfprompt judge --a runs/sp-answers --b runs/base-answers --out runs/judge --judge default "
    "--judge-backend openai --base-url http://127.0.0.1:8080/v1 --verdict-format json": Parse(SERVER),
    "selfprompt report runs/demo/": Parse("needs the finished demo study (tests/test_report.py renders a report)"),
    "selfprompt report runs/eval-x --eval baseline=runs/eval-y --judge sp-vs-base=runs/judge "
    "--baseline baseline": Parse("needs finished eval and judge folders (tests/test_report.py renders a report)"),
    "selfprompt serve --model runs/x/model --backend hf --port 8000": Parse(
        "a server runs until stopped (tests/test_serve.py starts it)"
    ),
    # docs/train.md
    "selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml data=runs/lima-role.jsonl": Parse(TRAINS),
    "selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml data=runs/lima-role.jsonl mode=baseline "
    "output_dir=runs/smollm2-baseline": Parse(TRAINS),
    "selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml --dry-run 3": Parse(
        "reads the recipe's data file, runs/lima-role.jsonl, made by `selfprompt annotate` "
        "(tests/test_train_data.py runs --dry-run)"
    ),
    "selfprompt train --config recipes/smollm2-135m-lora-cpu.yaml --resume auto": Parse(TRAINS),
    "accelerate launch --multi_gpu --num_processes 2 -m selfprompt.train "
    "--config recipes/smollm2-135m-lora-cpu.yaml": Parse(TRAINS + " (tests/test_train_run.py runs this launch)"),
    "torchrun --nproc_per_node 2 -m selfprompt.train --config recipes/smollm2-135m-lora-cpu.yaml": Parse(TRAINS),
    "accelerate launch --config_file recipes/accelerate/cpu-2proc.yaml --mpirun_hostfile HOSTFILE -m selfprompt.train "
    "--config recipes/smollm2-135m-lora-cpu.yaml": Parse("needs MPI and a host file"),
    "accelerate launch --config_file recipes/accelerate/deepspeed-zero3.yaml -m selfprompt.train "
    "--config recipes/mistral-7b-full.yaml": Parse("GPUs (DeepSpeed, a 7B model)"),
    "accelerate launch --config_file recipes/accelerate/fsdp.yaml -m selfprompt.train "
    "--config recipes/llama2-7b-full.yaml": Parse("GPUs (FSDP, a 7B model)"),
    "selfprompt merge runs/smollm2-self-prompt --out runs/smollm2-self-prompt-merged": Parse(NEEDS_TUNED),
}

COMMAND_START = re.compile(r"^(selfprompt|make|accelerate|torchrun|\.venv/bin/\S+) ")


def doc_commands() -> list[tuple[str, str]]:
    """(file name, command) for every command line in a fenced code block of the docs."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"^```[^\n]*\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = re.sub(r"\s+#\s.*$", "", line)  # a trailing comment
                for part in line.split(" && "):
                    part = " ".join(part.split())
                    if COMMAND_START.match(part):
                        found.append((doc.name, part))
    return found


DOC_COMMANDS = doc_commands()


def test_every_doc_command_is_in_the_table():
    listed = {command for _, command in DOC_COMMANDS}
    missing = [f"{name}: {command}" for name, command in DOC_COMMANDS if command not in COMMANDS]
    assert not missing, "docs commands without an entry in COMMANDS (decide Run or Parse):\n" + "\n".join(missing)
    stale = [command for command in COMMANDS if command not in listed]
    assert not stale, "entries for commands no doc has any more:\n" + "\n".join(stale)
    assert len(DOC_COMMANDS) >= 30, "the extraction found too few commands"


def selfprompt_args(command: str) -> list[str] | None:
    """The selfprompt arguments of a command line (also behind `accelerate launch -m selfprompt.train`)."""
    words = shlex.split(command)
    if words[0] == "selfprompt":
        return words[1:]
    if "-m" in words and words[words.index("-m") + 1] == "selfprompt.train":
        return ["train", *words[words.index("-m") + 2 :]]
    return None


def parse_only(args: list[str]) -> None:
    """Parse the arguments against the real command tree, running nothing (click raises a UsageError)."""
    from typer.core import TyperGroup
    from typer.main import get_command

    from selfprompt.cli import app

    command, name, parent = get_command(app), "selfprompt", None
    while True:
        ctx = command.make_context(name, list(args), parent=parent)
        rest = [*ctx._protected_args, *ctx.args]
        if not isinstance(command, TyperGroup) or not rest:
            return
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"no command '{rest[0]}' under '{name}'"
        command, name, args, parent = sub, rest[0], rest[1:], ctx


@pytest.mark.parametrize("command", [c for c, check in COMMANDS.items() if isinstance(check, Parse)])
def test_commands_that_cannot_run_here_parse(command):
    words = shlex.split(command)
    if words[0] == "make":
        target = words[1]
        assert re.search(rf"^{re.escape(target)}:", (REPO / "Makefile").read_text(), re.M), f"no make target {target}"
        return
    for word in words:  # files of the repository the line names (recipes, bench scripts, tests) exist
        for value in word.split("=")[-1:]:
            if value.startswith(("recipes/", "experiments/", "bench/", "tests/")):
                assert (REPO / value).exists(), f"{command}: {value} not found"
    if words[0].startswith(".venv/bin/"):
        return
    args = selfprompt_args(command)
    assert args is not None, f"no selfprompt command in: {command}"
    parse_only(args)


def small_args(command: str, check: Run) -> list[str]:
    """The command's selfprompt arguments at small sizes: replacements (each must match), then additions."""
    args = selfprompt_args(command)
    assert args is not None, f"no selfprompt command in: {command}"
    unused = [old for old in check.replace if old not in args]
    assert not unused, f"{command}: nothing to replace for {unused}"
    return [check.replace.get(a, a) for a in args] + list(check.append)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """One scratch folder for all runnable lines, as a reader in a checkout would run them."""
    work = tmp_path_factory.mktemp("docs")
    for name in ("recipes", "experiments"):
        (work / name).symlink_to(REPO / name)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c, check in COMMANDS.items() if isinstance(check, Run)])
def test_commands_that_can_run_here_succeed(command, workdir, data_dir):
    check = COMMANDS[command]
    assert isinstance(check, Run)
    if "llamacpp" in command:
        pytest.importorskip("llama_cpp")
    if check.setup:
        check.setup(workdir)
    args = small_args(command, check)
    env = {**os.environ, "SELFPROMPT_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([SELFPROMPT, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"ran: selfprompt {shlex.join(args)}\n{proc.stderr[-3000:]}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target}")
    assert not broken, "dead links:\n" + "\n".join(broken)


def test_docs_do_not_link_to_missing_docs_in_backticks():
    """`docs/NAME.md` written as code is a reference a reader follows like a link."""
    missing = [
        f"{doc.relative_to(REPO)}: {ref}"
        for doc in DOCS
        for ref in re.findall(r"`(docs/[\w.-]+\.md)`", doc.read_text(encoding="utf-8"))
        if not (REPO / ref).exists()
    ]
    assert not missing, "\n".join(missing)

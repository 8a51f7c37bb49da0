"""`selfprompt judge`: pairwise judging of two answer sets, and `selfprompt judge answers` to make them.

    selfprompt judge answers --model runs/sp/model --condition self-prompt --questions vicuna_bench --out runs/sp-answers
    selfprompt judge --a runs/sp-answers --b runs/base-answers --judge default --judge-backend llamacpp --out runs/judge

Question sets: `vicuna_bench` and `mt_bench` (first turns) from the data mirror, or any JSONL whose
rows carry `question` (or `turns`, first one taken) and `id` (or `question_id`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from selfprompt.cliconfig import OverridesGroup, config_command
from selfprompt.errors import ConfigError, DataError
from selfprompt.evaluate import judge as J
from selfprompt.evaluate.generation import GenerationCache, batches
from selfprompt.generate.conditions import get_condition
from selfprompt.generate.servers import SERVER_LOG, check_prefill, check_served, condition_needs, stage_backend
from selfprompt.jsonl import iter_json_lines, write_json, write_records
from selfprompt.manifest import write_manifest
from selfprompt.progress import ProgressLine
from selfprompt.records import Example

QUESTION_SETS = {"vicuna_bench": "vicuna_bench/question.jsonl", "mt_bench": "mt_bench/question.jsonl"}
PARTIAL_SUFFIX = ".partial"  # an earlier version's resume file, read once for its answers
# Answers come without a task, so no manual role can be chosen for them.
console = Console(stderr=True)


# ---------------------------------------------------------------------------------------------
# Questions and answers


def questions_file(name: str, data_dir: str | None) -> Path:
    if name in QUESTION_SETS:
        from selfprompt.data.mirror import check_files, resolve_data_dir

        root = resolve_data_dir(data_dir)
        assert root is not None
        path = root / QUESTION_SETS[name]
        check_files(root, [path])  # against MANIFEST.json, before it is read
        return path
    path = Path(name).expanduser()
    if not path.is_file():
        raise ConfigError(f"question set '{name}' is neither {' nor '.join(QUESTION_SETS)} nor a JSONL file")
    return path


def load_questions(name: str, data_dir: str | None = None, limit: int | None = None) -> list[Example]:
    """First turns of a question set, as Examples with string ids."""
    path = questions_file(name, data_dir)
    examples: list[Example] = []
    for number, obj in iter_json_lines(path):
        if limit is not None and len(examples) >= limit:
            break
        raw_id = obj.get("id", obj.get("question_id"))
        if raw_id is None:
            raise DataError(str(path), number, "id", "missing (need 'id' or 'question_id')")
        question = obj.get("question")
        if question is None and isinstance(obj.get("turns"), list) and obj["turns"]:
            question = obj["turns"][0]
        if not isinstance(question, str) or not question.strip():
            raise DataError(str(path), number, "question", "missing or empty (need 'question' or 'turns')")
        examples.append(Example(id=str(raw_id), question=question, source=Path(path).parent.name))
    return examples


class Answer(BaseModel):
    """One row of answers.jsonl, and of the answers' generation cache (keyed by answer_key)."""

    id: str
    question: str
    answer: str
    role: str | None
    raw: str
    condition: str
    format_held: bool | None
    problem: str | None
    finish_reason: str
    model: str
    key: str


def answer_key(backend: Any, question: Example, condition: str, sampling: Any) -> str:
    """sha256 of every input of one answer: model (by content), question, condition and its prompts, sampling."""
    from selfprompt.manifest import sha256_text

    parts = {
        "backend": backend.name,
        "model": backend.model_id,
        "question": question.question,
        "condition": condition,
        "sampling": sampling.model_dump(),
        "prompt": get_condition(condition).answers_key_prompt(),
    }
    return sha256_text(json.dumps(parts, sort_keys=True))


def answers_cache_path(out_file: Path, condition: str) -> Path:
    """The answers' generation cache beside the output, laid out as eval's (generations/<set>__<condition>)."""
    return out_file.parent / "generations" / f"answers__{condition}.jsonl"


def generate_answers(
    backend: Any,
    questions: list[Example],
    condition: str,
    sampling: Any,
    out_file: Path,
    chunk: int = 8,
    progress: Callable[[int, bool], None] = lambda n, cached: None,
) -> int:
    """Answer `questions` through a keyed generation cache (as eval's: see evaluate/generation.py) and write
    `out_file` (one Answer row per question, in question order). Returns how many answers were generated now.

    Each chunk of `chunk` questions is appended to the cache durably, so a killed run resumes without
    redoing or duplicating an answer; the key holds every input of an answer (answer_key), so a rerun with
    another model, sampling or prompt generates exactly the answers those change, and never mixes in
    another model's. `progress(n, cached)` hears of the answers already held first (cached=True), then of
    each chunk. Raises ConfigError for a condition that needs a manual role (answers have no task)."""
    answering = get_condition(condition)
    answering.check()  # before anything is written: a condition that needs a manual role has none here
    keys = [answer_key(backend, q, condition, sampling) for q in questions]
    partial = out_file.with_name(out_file.name + PARTIAL_SUFFIX)
    with GenerationCache(answers_cache_path(out_file, condition), Answer) as cache:
        for earlier in (partial, out_file):
            _adopt(cache, earlier, set(keys))
        todo = cache.missing(zip(questions, keys))
        progress(len(questions) - len(todo), True)
        for batch in batches(todo, chunk):
            outputs = answering.answer(backend, [q.question for q, _ in batch], sampling)
            for (q, k), o in zip(batch, outputs):
                cache.add(
                    Answer(
                        id=q.id,
                        question=q.question,
                        **o.read_fields(),
                        condition=condition,
                        model=backend.model_id,
                        key=k,
                    )
                )
            progress(len(batch), False)
        # A question asked twice under two ids is answered once; each row keeps its own id.
        rows = [cache[k].model_copy(update={"id": q.id}) for q, k in zip(questions, keys)]
    write_records(out_file, rows)
    partial.unlink(missing_ok=True)
    return len(todo)


def _adopt(cache: GenerationCache[Answer], path: Path, keys: set[str]) -> None:
    """Take into the cache the keyed answers of `path` that it lacks: an answers.jsonl written before the
    cache existed, or the partial file an earlier version left when killed. Their keys are the same, so
    those answers are reused; rows without a key, or not answers, are not ours and are left alone."""
    if not path.is_file():
        return
    for _, obj in iter_json_lines(path):
        key = obj.get("key")
        if key in keys and key not in cache:
            try:
                cache.add(Answer.model_validate(obj))
            except ValidationError:
                continue


# ---------------------------------------------------------------------------------------------
# The judging run


def run_judge(
    a: str, b: str, out: Path, judge_backend: Any, config: J.JudgeConfig, judge_spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    judge_spec = judge_spec or {"backend": judge_backend.name, "model": config.judge, "base_url": config.base_url}
    a_path, b_path = J.answers_path(a), J.answers_path(b)
    rows_a, rows_b = J.load_answers(a_path), J.load_answers(b_path)
    J.check_overlap(rows_a, rows_b, a_path, b_path)
    out.mkdir(parents=True, exist_ok=True)
    client = J.make_client(judge_backend, out / "judge_cache.sqlite", config)
    try:
        with ProgressLine("judge", None, "replies", console=console) as line:
            items = J.judge_pairs(client, rows_a, rows_b, config, progress=line)
        stats = client.stats.as_dict()
    finally:
        client.close()
    style = J.verdict_style(config.verdict_format)
    summary = {
        "a": str(a_path),
        "b": str(b_path),
        "judge": judge_backend.model_id,
        "template": style.template,
        "prompt": style.prompt_id,
        **J.summarize(items, config),
        "requests": stats,
    }
    write_records(out / "judgments.jsonl", items)
    write_json(out / "results.json", summary)
    write_manifest(
        out,
        stage="judge",
        data_files=[a_path, b_path],
        seed=config.seed,
        config={**config.model_dump(), "judge": judge_spec, "template": style.template, "prompt": style.prompt_id},
    )
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    ci = summary["win_rate_ci"]
    rate = summary["adjusted_win_rate"]
    console.print(
        f"A vs B over {summary['n_pairs']} questions: win {summary['win']}, tie {summary['tie']}, loss {summary['loss']}, "
        f"error {summary['error']}; adjusted win rate "
        + (f"{rate:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if rate is not None else "n/a")
        + (f"; inconsistency {summary['inconsistency_rate']:.2f}" if summary["inconsistency_rate"] is not None else "")
        + f"; requests sent {summary['requests']['requests_sent']}, cache hits {summary['requests']['cache_hits']}",
        highlight=False,
    )


def judge(config: J.JudgeConfig, ctx: typer.Context) -> None:
    """Judge A against B, each pair in both orders; results from A's side (win = A better)."""
    from selfprompt.generate.backends import STRUCTURED_OUTPUT_BACKENDS

    if not (config.a and config.b and config.out):
        raise ConfigError("selfprompt judge needs --a, --b and --out")
    backend_name = config.backend_name
    if J.verdict_style(config.verdict_format).response_format and backend_name not in STRUCTURED_OUTPUT_BACKENDS:
        raise ConfigError("--verdict-format json needs structured output: use --judge-backend llamacpp or openai")
    J.answers_path(config.a)  # bad inputs fail before a judge model is loaded
    J.answers_path(config.b)
    spec = {"backend": backend_name, "model": config.judge, "base_url": config.base_url}
    if config.server is not None:
        check_served(config.server, config.backend, config.base_url, field="judge")
    with stage_backend(
        config.judge,
        backend_name if config.server is None else config.backend,
        base_url=config.base_url,
        api_key_env=config.api_key_env,
        server=config.server,
        log=Path(config.out) / SERVER_LOG,
        concurrency=config.concurrency,
    ) as backend:
        print_summary(run_judge(config.a, config.b, Path(config.out), backend, config, spec))


def answers(config: J.AnswersConfig, ctx: typer.Context) -> None:
    """Answer a question set under one condition: rows {id, question, answer, role} for `judge`."""
    from selfprompt.generate.backends.base import Sampling
    from selfprompt.generate.conditions import check_condition

    check_condition(config.condition)  # settings first: loading a model takes a while
    if config.server is not None:  # what the server cannot do is refused before it starts
        check_served(config.server, config.backend, config.base_url)
        check_prefill(config.server, condition_needs(config.condition))
    out_file = config.out_file
    qs = load_questions(config.questions, config.data_dir, config.limit)  # before a model is loaded
    out_file.parent.mkdir(parents=True, exist_ok=True)
    sampling = Sampling(max_tokens=config.max_tokens, temperature=0.0, seed=config.seed)
    with (
        config.open_backend(out_file.parent / SERVER_LOG, concurrency=config.batch_size) as engine,  # a chunk at once
        ProgressLine("answers", len(qs), "answers", console=console) as line,
    ):
        generated = generate_answers(
            engine,
            qs,
            config.condition,
            sampling,
            out_file,
            chunk=config.batch_size,
            progress=lambda n, cached: line.advance(n, cached=cached),
        )
    write_manifest(
        out_file.parent,
        stage="answers",
        seed=config.seed,
        data_files=[questions_file(config.questions, config.data_dir)],
        config={**config.model_dump(), "backend": engine.name, "sampling": sampling.model_dump()},
        extra={"decisions": engine.decisions},
    )
    console.print(f"{len(qs)} answers in {out_file} ({generated} generated now)", highlight=False)


def register(app: typer.Typer) -> None:
    judge_app = typer.Typer(
        cls=OverridesGroup,
        help="Pairwise judging of two answer sets (both orders; strict "
        "verdicts). Settings: options, --config FILE and key=value overrides, in any order.",
    )
    judge_app.callback(invoke_without_command=True)(config_command(J.JudgeConfig, judge, positional_overrides=False))
    judge_app.command("answers")(config_command(J.AnswersConfig, answers))
    app.add_typer(judge_app, name="judge")

"""`selfprompt eval` end to end on the real default model: records, table, manifest, resume after a kill,
and `selfprompt eval score` on outputs from elsewhere."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfprompt.cli import app
from selfprompt.errors import ConfigError
from selfprompt.evaluate.roles import manual_role
from selfprompt.evaluate.runner import EvalConfig, run_eval

from conftest import CountingBackend


def config(out: Path, data_dir: Path, **kw) -> EvalConfig:
    base = dict(
        tasks=["gsm8k"],
        conditions=["plain", "manual-role"],
        data_dir=str(data_dir),
        out=str(out),
        limit=2,
        seed=3,
        max_tokens=12,
        trigger_max_tokens=6,
        bootstrap_resamples=200,
    )
    return EvalConfig(**{**base, **kw})


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def first_run(hf_backend, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    backend = CountingBackend(hf_backend)
    results = run_eval(config(out, data_dir), backend=backend)
    return out, results, backend.requests


def test_run_writes_records_table_and_manifest(first_run, data_dir):
    out, results, requests = first_run
    assert requests == 2 * 2 * 2  # conditions x items x (answer + trigger pass)
    for task in ("gsm8k",):
        for cond in ("plain", "manual-role"):
            rows = lines(out / "items" / f"{task}__{cond}.jsonl")
            assert len(rows) == 2
            for r in rows:
                assert r["raw"] and r["trigger_output"] is not None
                assert r["correct"] == (r["extracted"] is not None and r["extracted"] == r["reference"])
                assert r["extraction_failed"] == (r["extractor"] is None)
            if cond == "manual-role":
                assert all(r["role"] == manual_role("math").role_prompt for r in rows)
            summary = results["tasks"][task]["conditions"][cond]
            assert summary["n"] == 2 and summary["lenient"]["correct"] == sum(r["correct"] for r in rows)
        assert results["tasks"][task]["comparisons"][0]["a"] == "plain"
    table = (out / "results.md").read_text()
    assert "| gsm8k | manual-role | 2 |" in table and "McNemar" in table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "eval" and manifest["config"]["limit"] == 2
    # Machine-dependent choices, with the CPU they were made on: CPU inference is fp32 on every CPU.
    assert manifest["decisions"]["dtype"]["resolved"] == "float32" and manifest["decisions"]["threads"]["resolved"] >= 1
    assert manifest["decisions"]["attn_implementation"]["reason"]
    assert manifest["hardware"]["cpu"]["capability"] and "native_bf16" in manifest["hardware"]["cpu"]
    assert str(data_dir / "gsm8k" / "test.jsonl") in manifest["data"]
    assert json.loads((out / "results.json").read_text())["tasks"].keys() == {"gsm8k"}


def test_rerun_uses_the_cache_and_a_killed_run_resumes(first_run, hf_backend, data_dir):
    out, results, _ = first_run
    again = CountingBackend(hf_backend)
    assert run_eval(config(out, data_dir), backend=again)["tasks"] == results["tasks"]
    assert again.requests == 0

    # Simulate kill -9 during an append: one whole row lost, the next one torn in half.
    cache = out / "generations" / "gsm8k__plain.jsonl"
    kept = cache.read_text().splitlines(keepends=True)
    cache.write_text(kept[0] + kept[1][: len(kept[1]) // 2])
    resumed = CountingBackend(hf_backend)
    run_eval(config(out, data_dir), backend=resumed)
    assert resumed.requests == 2  # only the lost item: its answer and its trigger pass
    rows = lines(cache)
    assert len(rows) == 2 and len({r["key"] for r in rows}) == 2


def test_changing_sampling_does_not_reuse_outputs(first_run, hf_backend, data_dir):
    out, _, _ = first_run
    other = CountingBackend(hf_backend)
    # Other settings in the same folder replace its run (overwrite); the generation cache stays and must not
    # serve the old sampling's outputs.
    run_eval(
        config(out, data_dir, tasks=["gsm8k"], conditions=["plain"], limit=1, max_tokens=8, overwrite=True),
        backend=other,
    )
    assert other.requests == 2


def test_score_predictions_from_elsewhere(tmp_path, data_dir):
    rows = [
        {
            "task": "gsm8k",
            "id": "gsm8k-0",
            "output": "<role>\nFrom now on, you are a math tutor with 20 years of "
            "experience.\n</role>\n\n16 - 3 - 4 = 9 eggs, 9 * 2 = $18.",
            "condition": "ours",
        },
        {"task": "gsm8k", "id": "gsm8k-1", "output": "2 + 1 = 3 bolts", "trigger_output": " 3", "condition": "ours"},
        {"task": "gsm8k", "id": "gsm8k-0", "output": "I think 20.", "condition": "theirs"},
        {"task": "gsm8k", "id": "gsm8k-1", "output": "It takes 3 bolts.", "condition": "theirs"},
        {"task": "mmlu", "id": "mmlu-0", "output": "The answer is (B).", "condition": "ours"},
        # plain has no role: an opener that looks like one, even tagged, is part of the answer
        {
            "task": "gsm8k",
            "id": "gsm8k-0",
            "output": "<role>You are a baker. You need 16 - 3 - 4 = 9 eggs.\n\n9 * 2 = $18.",
            "condition": "plain",
        },
        {"task": "gsm8k", "id": "gsm8k-1", "output": "It takes 3 bolts.", "condition": "plain"},
        {
            "task": "humaneval",
            "id": "HumanEval/2",
            "output": "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```",
            "condition": "ours",
        },
    ]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "preds.jsonl.scores"
    res = json.loads((out / "results.json").read_text())["tasks"]
    assert res["gsm8k"]["conditions"]["ours"]["lenient"]["correct"] == 2  # role's "20" ignored
    assert res["gsm8k"]["conditions"]["theirs"]["lenient"]["correct"] == 1
    pair = next(c for c in res["gsm8k"]["comparisons"] if {c["a"], c["b"]} == {"ours", "theirs"})
    assert pair["lenient"]["difference"] == (-0.5 if pair["a"] == "ours" else 0.5)
    ours = lines(out / "items" / "gsm8k__ours.jsonl")
    assert ours[0]["role"].startswith("From now on") and ours[1]["extractor"] == "trigger-number"
    assert res["humaneval"]["conditions"]["ours"]["lenient"]["correct"] == 1
    assert lines(out / "items" / "humaneval__ours.jsonl")[0]["execution"]["status"] == "passed"
    plain = lines(out / "items" / "gsm8k__plain.jsonl")[0]
    assert plain["role"] is None and plain["format_held"] is None and plain["answer"].startswith("<role>You are")
    assert plain["correct"]
    assert (out / "manifest.json").exists() and "| gsm8k | ours |" in (out / "results.md").read_text()


def test_score_rejects_bad_rows_by_file_line_field(tmp_path, data_dir):
    preds = tmp_path / "bad.jsonl"
    preds.write_text(
        '{"task": "gsm8k", "id": "gsm8k-0", "output": "18"}\n{"task": "gsm8k", "id": "nope", "output": "1"}\n'
    )
    result = CliRunner().invoke(app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir)])
    assert result.exit_code != 0 and "bad.jsonl:2" in str(result.exception) and "'id'" in str(result.exception)
    preds.write_text('{"task": "gsm8k", "output": "18"}\n')
    result = CliRunner().invoke(app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir)])
    assert "bad.jsonl:1" in str(result.exception) and "'id'" in str(result.exception)


def test_cli_eval_runs_and_rejects_unknown_tasks(tmp_path, data_dir):
    runner = CliRunner()
    bad = runner.invoke(app, ["eval", "--tasks", "gsm9k", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "valid:" in str(bad.exception) and "gsm8k" in str(bad.exception)
    ok = runner.invoke(
        app,
        [
            "eval",
            "--tasks",
            "coin_flip",
            "--conditions",
            "plain",
            "--limit",
            "1",
            "--max-tokens",
            "8",
            "--trigger-max-tokens",
            "4",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "| coin_flip | plain | 1 |" in ok.output
    assert len(lines(tmp_path / "cli" / "items" / "coin_flip__plain.jsonl")) == 1


def test_score_refuses_a_duplicate_prediction_by_file_line_field(tmp_path, data_dir):
    """The issue's example: one right, one wrong, and the right one again must not score 2/3."""
    right = {"task": "gsm8k", "id": "gsm8k-0", "output": "She makes 9 * 2 = $18 every day. The answer is 18."}
    wrong = {"task": "gsm8k", "id": "gsm8k-1", "output": "The answer is 5."}
    preds = tmp_path / "dup.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in (right, wrong, right)))
    result = CliRunner().invoke(app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir)])
    assert result.exit_code != 0 and not (tmp_path / "dup.jsonl.scores" / "results.json").exists()
    err = result.exception
    assert (err.path, err.line, err.field) == (str(preds), 3, "id")
    assert "duplicate" in str(err) and "first on line 1" in str(err)

    # The same id under another condition is another system's prediction, not a duplicate.
    other = {**right, "condition": "other"}
    preds.write_text("".join(json.dumps(r) + "\n" for r in (right, wrong, other)))
    result = CliRunner().invoke(app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "dup.jsonl.scores" / "results.json").read_text())["tasks"]["gsm8k"]["conditions"]
    assert (res["external"]["n"], res["external"]["lenient"]["correct"]) == (2, 1)
    assert (res["other"]["n"], res["other"]["lenient"]["correct"]) == (1, 1)


def test_score_reads_a_predictions_file_with_a_bom_and_keeps_no_earlier_scoring(tmp_path, data_dir):
    rows = [
        {"task": "gsm8k", "id": "gsm8k-0", "output": "The answer is 18."},
        {"task": "mmlu", "id": "mmlu-0", "output": "The answer is (B).", "condition": "x"},
    ]
    preds = tmp_path / "bom.jsonl"
    preds.write_bytes(codecs.BOM_UTF8 + "".join(json.dumps(r) + "\n" for r in rows).encode())
    out = tmp_path / "scores"
    result = CliRunner().invoke(
        app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())["tasks"]
    assert res["gsm8k"]["conditions"]["external"]["lenient"]["correct"] == 1
    assert sorted(p.name for p in (out / "items").iterdir()) == ["gsm8k__external.jsonl", "mmlu__x.jsonl"]
    preds.write_bytes(codecs.BOM_UTF8 + (json.dumps(rows[0]) + "\n").encode())  # score other predictions there
    assert (
        CliRunner()
        .invoke(app, ["eval", "score", "--predictions", str(preds), "--data-dir", str(data_dir), "--out", str(out)])
        .exit_code
        == 0
    )
    assert [p.name for p in (out / "items").iterdir()] == ["gsm8k__external.jsonl"]


def test_an_eval_folder_holds_one_run(hf_backend, data_dir, tmp_path):
    """Same scope: resumed. Fewer tasks: refused, nothing touched. --overwrite: replaced, no stale files."""
    out = tmp_path / "one"
    two_tasks = config(out, data_dir, tasks=["gsm8k", "coin_flip"], conditions=["plain"], limit=1, max_tokens=8)
    backend = CountingBackend(hf_backend)
    first = run_eval(two_tasks, backend=backend)
    assert backend.requests == 2 * 2 and set(first["tasks"]) == {"gsm8k", "coin_flip"}
    items_before = {p.name: p.read_text() for p in (out / "items").iterdir()}

    again = CountingBackend(hf_backend)
    assert run_eval(two_tasks, backend=again)["tasks"] == first["tasks"] and again.requests == 0

    fewer = two_tasks.model_copy(update={"tasks": ["gsm8k"]})
    with pytest.raises(ConfigError, match="other settings.*tasks.*coin_flip.*--overwrite") as err:
        run_eval(fewer, backend=again)
    assert str(out) in str(err.value)
    assert {p.name: p.read_text() for p in (out / "items").iterdir()} == items_before  # refused: nothing touched
    assert set(json.loads((out / "results.json").read_text())["tasks"]) == {"gsm8k", "coin_flip"}

    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--tasks",
            "gsm8k",
            "--conditions",
            "plain",
            "--limit",
            "1",
            "--seed",
            "3",
            "--max-tokens",
            "8",
            "--trigger-max-tokens",
            "6",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code != 0 and "--overwrite" in str(result.exception)

    replaced = run_eval(fewer.model_copy(update={"overwrite": True}), backend=again)
    assert again.requests == 0  # the generation cache is kept: gsm8k's generation is reused
    assert set(replaced["tasks"]) == {"gsm8k"}
    assert [p.name for p in (out / "items").iterdir()] == ["gsm8k__plain.jsonl"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["tasks"] == ["gsm8k"]
    assert json.loads((out / "settings.json").read_text())["tasks"] == ["gsm8k"]


def test_a_folder_of_unknown_settings_is_not_mixed_into(hf_backend, data_dir, tmp_path):
    out = tmp_path / "old"
    (out / "items").mkdir(parents=True)
    (out / "items" / "mmlu__plain.jsonl").write_text("{}\n")
    (out / "results.json").write_text('{"tasks": {"mmlu": {}}}\n')
    cfg = config(out, data_dir, tasks=["coin_flip"], conditions=["plain"], limit=1, max_tokens=8)
    with pytest.raises(ConfigError, match="unknown settings"):
        run_eval(cfg, backend=hf_backend)
    run_eval(cfg.model_copy(update={"overwrite": True}), backend=hf_backend)
    assert [p.name for p in (out / "items").iterdir()] == ["coin_flip__plain.jsonl"]

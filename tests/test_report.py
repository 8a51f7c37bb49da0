"""`selfprompt report` checked in real headless Chromium (Debian package `chromium`).

The inputs are written in the eval's and judge's own formats by their own code (ItemResult,
summarize/compare, judge.summarize) from seeded item outcomes, so the report reads exactly what
those stages write. The page must render, its plots must decode to real images, Chromium must
log no console message, and a screenshot is produced (kept in the test's tmp folder).
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfprompt.evaluate.judge import JudgeConfig
from selfprompt.evaluate.judge import summarize as judge_summary
from selfprompt.evaluate.runner import ItemResult, compare, summarize
from selfprompt.jsonl import write_json, write_records
from selfprompt.manifest import write_manifest
from selfprompt.report.build import expert_of, load_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROLES = [
    "From now on, you are an expert mathematician who checks every step.",
    "From now on, you are a math teacher with twenty years of experience.",
    "From now on, you are an expert mathematician, careful and precise.",
    "You are a historian specializing in ancient Rome.",
]


def write_eval(folder: Path, condition: str, accuracy: float, roles: bool, seed: int) -> None:
    rng = random.Random(seed)
    results = {"model": "m", "backend": "hf", "tasks": {}}
    for task in ("gsm8k", "strategyqa"):
        items = []
        for k in range(30):
            correct = rng.random() < accuracy
            items.append(
                ItemResult(
                    task=task,
                    condition=condition,
                    id=f"{task}-{k}",
                    question=f"Question {k} of {task} <b>bold?</b>",
                    reference="42",
                    role=rng.choice(ROLES) if roles else None,
                    raw="...",
                    answer=f"The answer is {k}.",
                    trigger_output=None,
                    extracted_strict=str(k),
                    extracted=str(k),
                    extractor="regex",
                    correct_strict=correct and k % 2 == 0,
                    correct=correct,
                    extraction_failed=False,
                    format_held=True if roles else None,
                )
            )
        write_records(folder / "items" / f"{task}__{condition}.jsonl", items)
        results["tasks"][task] = {
            "version": "1",
            "metric": "accuracy",
            "n_items": 30,
            "conditions": {condition: summarize(items, 200, 0)},
            "comparisons": compare({condition: items}, 200, 0),
        }
    write_json(folder / "results.json", results)
    write_manifest(folder, stage="eval", config={"condition": condition}, seed=0)


def write_judge(folder: Path) -> None:
    rng = random.Random(3)
    items = []
    for k in range(20):
        outcome = rng.choice(["win", "win", "tie", "loss", "error"])
        items.append(
            {
                "id": str(k),
                "question": f"Open question {k}?",
                "answer_a": "A's answer",
                "role_a": ROLES[0],
                "answer_b": "B's answer",
                "role_b": None,
                "outcome": outcome,
                "inconsistent": outcome == "tie" and k % 2 == 0,
                "verdict_ab": "A",
                "verdict_ba": "B",
                "reasoning_ab": "A is clearer.",
                "reasoning_ba": "",
                "attempts_ab": 1,
                "attempts_ba": 1 + (k % 3 == 0),
                "problems": [],
                "error": "unparsable" if outcome == "error" else None,
            }
        )
    results = {"a": "a", "b": "b", "judge": "default", **judge_summary(items, JudgeConfig(bootstrap_samples=200))}
    write_records(folder / "judgments.jsonl", items)
    write_json(folder / "results.json", results)
    write_manifest(folder, stage="judge", config={}, seed=0)


@pytest.fixture
def run_dir(tmp_path):
    write_eval(tmp_path / "eval-sp", "self-prompt", 0.7, roles=True, seed=1)
    write_eval(tmp_path / "eval-base", "plain", 0.3, roles=False, seed=2)
    write_judge(tmp_path / "judge")
    write_json(
        tmp_path / "experiment.json",
        {
            "title": "Report test",
            "baseline": "baseline",
            "evals": {"self-prompt": "eval-sp", "baseline": "eval-base"},
            "judges": {"self-prompt vs baseline": "judge"},
        },
    )
    return tmp_path


def test_expert_names_come_from_the_role():
    assert expert_of(ROLES[0]) == "expert mathematician"
    assert expert_of(ROLES[1]) == "math teacher"
    assert expert_of(ROLES[3]) == "historian"


def test_report_model_pairs_systems_and_counts_roles(run_dir):
    from selfprompt.report.build import delta_rows, role_distribution

    report = load_run(run_dir)
    assert [s.name for s in report.systems] == ["self-prompt", "baseline"] and report.baseline == "baseline"
    deltas = {r["task"]: r for r in delta_rows(report)}
    for task in ("gsm8k", "strategyqa"):
        sp = report.system("self-prompt").summary[task]["lenient"]["accuracy"]
        base = report.system("baseline").summary[task]["lenient"]["accuracy"]
        assert deltas[task]["lenient"]["difference"] == pytest.approx(sp - base)
        assert deltas[task]["n"] == 30
    roles = role_distribution(report)
    assert set(roles) == {"self-prompt"}, "the baseline wrote no roles"
    assert sum(c for _, c in roles["self-prompt"]["gsm8k"]) == 30


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    exe = str(Path(sys.executable).parent / "selfprompt")
    proc = subprocess.run([exe, "report", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = run_dir / "report" / "report.html"
    md = (run_dir / "report" / "report.md").read_text()
    page = html.read_text()
    assert "plots/accuracy.png" in md and "| gsm8k | self-prompt |" in md
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page), "self-contained: no external assets"
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page, "model and data text is escaped"

    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run([*base, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    plots = re.search(r'data-plots="(\d+)"', dom.stdout)
    rendered = re.search(r'data-plots-rendered="(\d+)"', dom.stdout)
    assert plots and rendered, "the page's load handler ran"
    assert int(plots.group(1)) == 4 and int(rendered.group(1)) == 4, "accuracy, delta, outcome and role plots decode"
    assert "Pairwise judge" in dom.stdout and "expert mathematician" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], f"console messages: {console}"

    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2400", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000, "a real screenshot with content"


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_console_check_catches_errors(tmp_path):
    """The console scan above can fail: a page with an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>notDefined();</script></body></html>")
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert any(":CONSOLE" in line and "notDefined" in line for line in dom.stderr.splitlines())


# --- the baseline is declared, never guessed --------------------------------------------------------


def write_eval_conditions(folder: Path, accuracies: dict[str, float]) -> None:
    """One eval folder with several conditions, as `selfprompt eval --conditions a,b` writes it."""
    results = {"model": "m", "backend": "hf", "tasks": {}}
    rng = random.Random(7)
    per_condition = {}
    for condition, accuracy in accuracies.items():
        items = [
            ItemResult(
                task="gsm8k",
                condition=condition,
                id=f"gsm8k-{k}",
                question=f"Q{k}",
                reference="1",
                role=None,
                raw="1",
                answer="1",
                trigger_output=None,
                extracted_strict="1",
                extracted="1",
                extractor="regex",
                correct_strict=ok,
                correct=ok,
                extraction_failed=False,
            )
            for k, ok in enumerate(rng.random() < accuracy for _ in range(40))
        ]
        write_records(folder / "items" / f"gsm8k__{condition}.jsonl", items)
        per_condition[condition] = items
    results["tasks"]["gsm8k"] = {
        "version": "1",
        "metric": "accuracy",
        "n_items": 40,
        "conditions": {c: summarize(r, 200, 0) for c, r in per_condition.items()},
        "comparisons": compare(per_condition, 200, 0),
    }
    write_json(folder / "results.json", results)


def test_the_report_never_picks_a_baseline_alphabetically(tmp_path):
    from selfprompt.errors import ConfigError
    from selfprompt.report.build import delta_rows

    run = tmp_path / "eval"
    write_eval_conditions(run, {"plain": 0.3, "icl-self-prompt": 0.6})
    with pytest.raises(ConfigError, match="no baseline declared") as err:
        load_run(run)
    assert all(name in str(err.value) for name in ("eval/plain", "eval/icl-self-prompt", "--baseline"))

    for name in ("plain", "eval/plain"):  # a condition or a system name
        report = load_run(run, baseline=name)
        assert report.baseline == "eval/plain"
        [row] = delta_rows(report)
        plain, icl = (
            report.system(f"eval/{c}").summary["gsm8k"]["lenient"]["accuracy"] for c in ("plain", "icl-self-prompt")
        )
        assert (row["system"], row["baseline"]) == ("eval/icl-self-prompt", "eval/plain")
        assert row["lenient"]["difference"] == pytest.approx(icl - plain) and icl > plain
    assert load_run(run, baseline="icl-self-prompt").baseline == "eval/icl-self-prompt"
    with pytest.raises(ConfigError, match="'manual-role' is not one of the systems: eval/plain, eval/icl-self-prompt"):
        load_run(run, baseline="manual-role")

    exe = str(Path(sys.executable).parent / "selfprompt")
    refused = subprocess.run([exe, "report", str(run)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "eval/plain" in refused.stderr and "Traceback" not in refused.stderr
    ok = subprocess.run([exe, "report", str(run), "--baseline", "plain"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "## Difference to the baseline (eval/plain)" in (run / "report" / "report.md").read_text()


def test_the_experiment_declares_the_baseline_and_it_must_name_one_system(tmp_path):
    from selfprompt.errors import ConfigError, DataError
    from selfprompt.experiment.spec import load_experiment

    write_eval_conditions(tmp_path / "eval-a", {"plain": 0.3, "icl-self-prompt": 0.6})
    write_eval_conditions(tmp_path / "eval-b", {"self-prompt": 0.5})
    index = {"title": "t", "evals": {"a": "eval-a", "b": "eval-b"}, "judges": {}}
    write_json(tmp_path / "experiment.json", {**index, "baseline": "b"})
    assert load_run(tmp_path).baseline == "b"
    assert load_run(tmp_path, baseline="a/plain").baseline == "a/plain", "--baseline overrides the experiment"
    write_json(tmp_path / "experiment.json", {**index, "baseline": "a"})
    with pytest.raises(ConfigError, match="matches 2 systems: a/plain, a/icl-self-prompt"):
        load_run(tmp_path)
    write_json(tmp_path / "experiment.json", {**index, "baseline": None})
    with pytest.raises(ConfigError, match="no baseline declared and 3 candidates"):
        load_run(tmp_path)

    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "name: x\nbaseline: base\neval:\n  tasks: [gsm8k]\n  systems:\n"
        "    tuned: {model: default, conditions: [plain]}\n"
        "    untuned: {model: default, conditions: [plain]}\n"
    )
    with pytest.raises(DataError, match="baseline 'base' is not a label under eval.systems"):
        load_experiment(experiment)

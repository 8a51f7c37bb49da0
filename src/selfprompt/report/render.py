"""Render a Report to a self-contained report.html (plots inlined as base64 PNG) and report.md."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from selfprompt.jsonl import write_text
from selfprompt.report import plots
from selfprompt.report.build import (
    Report,
    accuracy_rows,
    delta_rows,
    example_rows,
    fmt_ci,
    fmt_pct,
    role_distribution,
)

JUDGE_EXAMPLES = 3  # judged items shown per comparison


def _version() -> str:
    try:
        return importlib.metadata.version("selfprompt")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def figures(report: Report, acc: list, deltas: list, roles: dict) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if acc:
        out["accuracy"] = plots.accuracy_plot(acc)
    if deltas:
        out["delta"] = plots.delta_plot(deltas)
    if report.judges:
        out["outcomes"] = plots.outcome_plot(report.judges)
    if roles:
        out["roles"] = plots.roles_plot(roles)
    return out


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write report.html, report.md and plots/*.png (the PNGs are for the markdown only)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    acc, deltas, roles, examples = (
        accuracy_rows(report),
        delta_rows(report),
        role_distribution(report),
        example_rows(report),
    )
    pngs = figures(report, acc, deltas, roles)
    (out_dir / "plots").mkdir(exist_ok=True)
    for name, data in pngs.items():
        (out_dir / "plots" / f"{name}.png").write_bytes(data)
    context = {
        "title": report.title,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "version": _version(),
        "sources": report.sources,
        "baseline": report.baseline,
        "accuracy_rows": acc,
        "delta_rows": deltas,
        "judges": report.judges,
        "roles": roles,
        "examples": examples,
        "manifests": report.manifests,
        "plots": {k: base64.b64encode(v).decode("ascii") for k, v in pngs.items()},
        "judge_examples": JUDGE_EXAMPLES,
        "ci": fmt_ci,
        "pct": fmt_pct,
        "manifest_json": lambda m: json.dumps(m, indent=2, ensure_ascii=False, default=str),
    }
    env = Environment(
        loader=PackageLoader("selfprompt.report", "templates"), autoescape=select_autoescape(["html", "jinja"])
    )
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    write_text(html_path, env.get_template("report.html.jinja").render(**context))
    write_text(md_path, markdown(report, acc, deltas, roles, examples))
    return html_path, md_path


def _cell(text: Any, limit: int = 160) -> str:
    text = " ".join(str(text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown(report: Report, acc: list, deltas: list, roles: dict, examples: list) -> str:
    lines = [f"# {report.title}", ""]
    if acc:
        lines += [
            "## Accuracy",
            "",
            "![accuracy](plots/accuracy.png)",
            "",
            "| task | system | n | lenient [95% CI] | strict [95% CI] | extraction failures |",
            "| --- | --- | ---: | --- | --- | ---: |",
        ]
        lines += [
            f"| {r['task']} | {r['system']} | {r['n']} | {fmt_ci(r['lenient'])} | {fmt_ci(r['strict'])} | "
            f"{fmt_pct(r['extraction_failure_rate'])} |"
            for r in acc
        ]
        lines.append("")
    if deltas:
        lines += [
            f"## Difference to the baseline ({report.baseline})",
            "",
            "![deltas](plots/delta.png)",
            "",
            "| task | system | n | Δ lenient [95% CI] | McNemar p | significant |",
            "| --- | --- | ---: | --- | ---: | --- |",
        ]
        lines += [
            f"| {r['task']} | {r['system']} | {r['n']} | {fmt_ci(r['lenient'], 'difference')} | "
            f"{r['lenient']['p_value']:.3g} | {'yes' if r['lenient']['significant'] else 'no'} |"
            for r in deltas
        ]
        lines.append("")
    if report.judges:
        lines += [
            "## Pairwise judge",
            "",
            "![outcomes](plots/outcomes.png)",
            "",
            "| comparison | judge | win | tie | loss | error | adjusted win rate [95% CI] | inconsistency |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
        for label, j in report.judges.items():
            r = j["results"]
            rate = (
                f"{fmt_pct(r['adjusted_win_rate'])} [{fmt_pct(r['win_rate_ci'][0])}, {fmt_pct(r['win_rate_ci'][1])}]"
                if r.get("adjusted_win_rate") is not None
                else "n/a"
            )
            lines.append(
                f"| {label} | {r.get('judge', '')} | {r['win']} | {r['tie']} | {r['loss']} | {r['error']} | {rate} | "
                f"{fmt_pct(r.get('inconsistency_rate'))} |"
            )
        lines.append("")
    if roles:
        lines += ["## Roles the model chose", "", "![roles](plots/roles.png)", ""]
        for system, per_task in roles.items():
            for task, top in per_task.items():
                lines.append(f"- **{system}** · {task}: " + ", ".join(f"{name} ({count})" for name, count in top))
        lines.append("")
    if examples:
        lines += ["## Examples", ""]
        for ex in examples:
            lines += [
                f"**{ex['task']} · {ex['id']}**: {_cell(ex['question'], 300)}",
                "",
                "| system | role | answer | correct |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| {c['system']} | {_cell(c['role'])} | {_cell(c['answer'])} | {c['correct']} |" for c in ex["cells"]
            ]
            lines.append("")
    lines += ["## Inputs", ""] + [f"- {name}: `{path}`" for name, path in report.sources.items()] + [""]
    lines += ["Manifests (config, versions, data hashes, seeds) are in each input folder and in report.html.", ""]
    return "\n".join(lines)

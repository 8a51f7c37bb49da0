"""results.md: eval's results (as in results.json) as markdown tables."""

from __future__ import annotations

from typing import Any


def markdown_table(results: dict[str, Any]) -> str:
    lines = [
        "| task | condition | n | strict acc [95% CI] | lenient acc [95% CI] | extraction failures | abstained |",
        "| --- | --- | ---: | --- | --- | ---: | ---: |",
    ]
    for task, entry in results["tasks"].items():
        for cond, s in entry["conditions"].items():
            lines.append(
                f"| {task} | {cond} | {s['n']} | {_acc(s['strict'])} | {_acc(s['lenient'])} | "
                f"{s['extraction_failure_rate']:.1%} | {s.get('abstained_rate') or 0:.1%} |"
            )
    comparisons = [(t, c) for t, e in results["tasks"].items() for c in e["comparisons"]]
    if comparisons:
        lines += [
            "",
            "| task | a → b | Δ lenient [95% CI] | McNemar p (lenient) | Δ strict [95% CI] | McNemar p (strict) |",
            "| --- | --- | --- | ---: | --- | ---: |",
        ]
        for task, c in comparisons:
            lines.append(
                f"| {task} | {c['a']} → {c['b']} | {_diff(c['lenient'])} | "
                f"{c['lenient']['mcnemar']['p_value']:.3g} | "
                f"{_diff(c['strict'])} | {c['strict']['mcnemar']['p_value']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def _acc(a: dict) -> str:
    return f"{a['accuracy']:.1%} [{a['ci_low']:.1%}, {a['ci_high']:.1%}]"


def _diff(d: dict) -> str:
    return f"{d['difference']:+.1%} [{d['ci_low']:+.1%}, {d['ci_high']:+.1%}]"

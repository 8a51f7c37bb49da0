"""matplotlib figures for the report, returned as PNG bytes (embedded as base64, also saved for report.md)."""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

OUTCOME_COLORS = {"win": "#2e7d32", "tie": "#9e9e9e", "loss": "#c62828", "error": "#ffb300"}


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _finite(x: float | None) -> float:
    return 0.0 if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def accuracy_plot(rows: list[dict[str, Any]], metric: str = "lenient") -> bytes:
    """Grouped bars: accuracy per task, one bar per system, bootstrap CI as error bars."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    systems = list(dict.fromkeys(r["system"] for r in rows))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(tasks) + 2), 3.6))
    for k, system in enumerate(systems):
        xs, ys, lows, highs = [], [], [], []
        for t, task in enumerate(tasks):
            row = next((r for r in rows if r["task"] == task and r["system"] == system), None)
            if row is None:
                continue
            acc = row[metric]
            y = _finite(acc["accuracy"])
            xs.append(t - 0.4 + width * (k + 0.5))
            ys.append(y)
            lows.append(max(0.0, y - _finite(acc["ci_low"])))
            highs.append(max(0.0, _finite(acc["ci_high"]) - y))
        ax.bar(xs, ys, width, yerr=[lows, highs], capsize=3, label=system)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"accuracy ({metric})")
    ax.set_title("Accuracy per task (95% bootstrap CI)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def delta_plot(rows: list[dict[str, Any]], metric: str = "lenient") -> bytes:
    """Horizontal bars: system minus baseline per task with paired CI; significant ones marked."""
    labels = [f"{r['task']}: {r['system']}" for r in rows]
    values = [_finite(r[metric]["difference"]) for r in rows]
    lows = [max(0.0, v - _finite(r[metric]["ci_low"])) for v, r in zip(values, rows)]
    highs = [max(0.0, _finite(r[metric]["ci_high"]) - v) for v, r in zip(values, rows)]
    colors = ["#1565c0" if r[metric]["significant"] else "#90a4ae" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.4))
    ax.barh(range(len(rows)), values, xerr=[lows, highs], color=colors, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlim(-1, 1)
    ax.set_xlabel(f"accuracy difference vs {rows[0]['baseline']} ({metric}); dark = McNemar p < 0.05")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def outcome_plot(judges: dict[str, dict[str, Any]]) -> bytes:
    """Stacked horizontal bars of win / tie / loss / error per judged comparison."""
    labels = list(judges)
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.2))
    left = [0.0] * len(labels)
    for outcome, color in OUTCOME_COLORS.items():
        counts = [judges[label]["results"].get(outcome, 0) for label in labels]
        ax.barh(range(len(labels)), counts, left=left, color=color, label=outcome)
        for y, (start, count) in enumerate(zip(left, counts)):
            if count:
                ax.text(start + count / 2, y, str(count), ha="center", va="center", color="white", fontsize=9)
        left = [a + b for a, b in zip(left, counts)]
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("questions (A's side: win = A judged better in both orders)")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    return _png(fig)


def roles_plot(distribution: dict[str, dict[str, list[tuple[str, int]]]]) -> bytes:
    """One panel per (system, task): the experts the model chose most often."""
    panels = [(system, task, top) for system, per_task in distribution.items() for task, top in per_task.items()]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(7, 0.32 * sum(len(p[2]) for p in panels) + 1.1 * len(panels)), squeeze=False
    )
    for ax, (system, task, top) in zip(axes[:, 0], panels):
        names = [name[:48] for name, _ in top]
        ax.barh(range(len(top)), [count for _, count in top], color="#6a1b9a")
        ax.set_yticks(range(len(top)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{system} · {task}", fontsize=9)
    fig.tight_layout()
    return _png(fig)

"""Figures over a bench's repeated runs, in the two shapes the result files use, and the data mirror they read.

Imported by the scripts beside it (run as `python bench/NAME.py`, so this folder is on the path)."""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path


def data_dir() -> Path:
    """The local data mirror: $SELFPROMPT_DATA_DIR, else ../shared/data beside the repository (the Makefile's)."""
    return Path(os.environ.get("SELFPROMPT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


def at_least(low: int):
    """An argparse type: an int >= low (a bench with 0 rounds or 0 items has no figures to report)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value

    return parse


def spread(values: list[float]) -> dict:
    """{"median", "min", "max", "spread": (max - min) / median (None for a zero median), "runs": values}."""
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / median if median else None,
        "runs": values,
    }


def medians(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """For each key of `runs`' dicts: KEY (the median), KEY_min_max ([min, max]) and KEY_spread ((max - min) /
    median, None for a zero median)."""
    out: dict = {}
    for key in keys:
        summary = spread([r[key] for r in runs])
        out[key] = summary["median"]
        out[f"{key}_min_max"] = [summary["min"], summary["max"]]
        out[f"{key}_spread"] = summary["spread"]
    return out

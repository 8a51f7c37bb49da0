"""Statistics for benchmark results, numpy only.

* accuracy with a percentile bootstrap confidence interval over items;
* paired comparison of two conditions on the same items: difference in accuracy with a paired
  bootstrap CI, and McNemar's test on the discordant pairs (exact two-sided binomial test when
  there are fewer than 25 discordant pairs, else the chi-square test with continuity correction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

EXACT_MCNEMAR_BELOW = 25  # discordant pairs; below this the chi-square approximation is poor


def bootstrap_ci(
    values: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values`; (nan, nan) for no values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def accuracy(correct: Sequence[bool], **kwargs) -> dict:
    x = np.asarray(correct, dtype=float)
    low, high = bootstrap_ci(x, **kwargs)
    return {
        "n": int(x.size),
        "correct": int(x.sum()),
        "accuracy": float(x.mean()) if x.size else math.nan,
        "ci_low": low,
        "ci_high": high,
    }


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n fair trials (doubling the smaller tail)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """McNemar's test for paired outcomes: b01 = only `b` right, b10 = only `a` right."""
    a_arr, b_arr = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a = int((a_arr & ~b_arr).sum())
    only_b = int((~a_arr & b_arr).sum())
    n = only_a + only_b
    if n < EXACT_MCNEMAR_BELOW:
        return {"only_a": only_a, "only_b": only_b, "test": "exact-binomial", "p_value": binomial_two_sided(only_a, n)}
    chi2 = (abs(only_a - only_b) - 1) ** 2 / n
    return {
        "only_a": only_a,
        "only_b": only_b,
        "test": "chi2-continuity",
        "statistic": chi2,
        "p_value": math.erfc(math.sqrt(chi2 / 2)),
    }  # survival function of chi-square with 1 df


def paired_comparison(a: Sequence[bool], b: Sequence[bool], **kwargs) -> dict:
    """Accuracy of b minus accuracy of a on the same items, with a paired bootstrap CI and McNemar."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same items: {len(a)} vs {len(b)}")
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    low, high = bootstrap_ci(diff, **kwargs)
    return {
        "n": int(diff.size),
        "difference": float(diff.mean()) if diff.size else math.nan,
        "ci_low": low,
        "ci_high": high,
        "mcnemar": mcnemar(a, b),
    }

"""Bootstrap CIs, paired differences and McNemar's test (numpy only), checked against exact values."""

from __future__ import annotations

import math

import numpy as np

from selfprompt.evaluate.stats import accuracy, binomial_two_sided, bootstrap_ci, mcnemar, paired_comparison


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = rng.random(20) < 0.6
    large = rng.random(2000) < 0.6
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3
    assert abs((hi_l - lo_l) - 2 * 1.96 * math.sqrt(0.24 / 2000)) < 0.01  # normal approximation


def test_accuracy_summary():
    s = accuracy([True, True, False, True])
    assert (s["n"], s["correct"], s["accuracy"]) == (4, 3, 0.75)


def test_exact_binomial_against_hand_values():
    assert binomial_two_sided(0, 5) == 2 / 32
    assert binomial_two_sided(5, 5) == 2 / 32
    assert math.isclose(binomial_two_sided(1, 6), 2 * 7 / 64)
    assert binomial_two_sided(3, 6) == 1.0 and binomial_two_sided(0, 0) == 1.0


def test_mcnemar_small_and_large():
    a = [True] * 5 + [False] * 10
    b = [False] * 5 + [False] * 10
    small = mcnemar(a, b)
    assert small["test"] == "exact-binomial" and (small["only_a"], small["only_b"]) == (5, 0)
    assert small["p_value"] == 2 / 32
    # 40 vs 10 discordant pairs: chi2 = (|40-10|-1)^2/50 = 16.82, p = 4.1e-5
    a = [True] * 40 + [False] * 10 + [True] * 30
    b = [False] * 40 + [True] * 10 + [True] * 30
    large = mcnemar(a, b)
    assert large["test"] == "chi2-continuity" and math.isclose(large["statistic"], 16.82)
    assert math.isclose(large["p_value"], 4.11e-5, rel_tol=0.01)


def test_paired_comparison_sign_and_ci():
    a = [False] * 30 + [True] * 20
    b = [True] * 30 + [True] * 20
    c = paired_comparison(a, b)
    assert math.isclose(c["difference"], 0.6) and 0.4 < c["ci_low"] <= 0.6 <= c["ci_high"]
    assert c["mcnemar"]["p_value"] < 1e-5
    same = paired_comparison(a, a)
    assert same["difference"] == 0 and same["mcnemar"]["p_value"] == 1.0

"""Evaluate: benchmarks as data (tasks/*.yaml), role-aware answer extraction, HumanEval sandbox, statistics.

Entry points: `selfprompt eval` / `eval score` (cli.py), `runner.run_eval`, `score.score_predictions`.
One job per module: config, generation (keyed cache), scoring, render, rundir (one run per folder).
"""

"""Gold cases recorded from the default model (SmolLM2-135M-Instruct through llama.cpp, greedy, plain
condition, 160 + 32 new tokens) on seeded items: its real outputs are in recorded.jsonl, each with the right
extraction checked by hand. Same conventions as cases_numbers.py."""

from __future__ import annotations

import json
from pathlib import Path

from case import Case

CASES = [
    Case(**json.loads(line))
    for line in (Path(__file__).parent / "recorded.jsonl").read_text().splitlines()
    if line.strip()
]

"""From LIMA-Role rows to token ids and labels, with the loss mask taken from the messages.

Both modes read the same rows and make the same choices about them: a row is kept or excluded
by looking at its tokenization in *both* modes, so a baseline and a self-prompt run train on
the same ids in the same order. The loss mask comes from the training chat template's
`{% generation %}` markers (see `templates.py`), i.e. from message boundaries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from selfprompt.format import SelfPromptFormat
from selfprompt.records import RoleExample

IGNORE_INDEX = -100
MODES = ("self-prompt", "baseline")


@dataclass
class TokenizedExample:
    id: str
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where no loss is taken

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class PreparedData:
    examples: list[TokenizedExample]
    excluded: dict[str, list[str]] = field(default_factory=dict)  # reason -> row ids

    @property
    def row_ids(self) -> list[str]:
        return [e.id for e in self.examples]

    def row_ids_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.row_ids).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "rows": len(self.examples),
            "row_ids_sha256": self.row_ids_sha256(),
            "trained_tokens": sum(e.trained_tokens for e in self.examples),
            "total_tokens": sum(len(e.input_ids) for e in self.examples),
            "excluded": {reason: {"count": len(ids), "ids": ids} for reason, ids in self.excluded.items()},
        }


def assistant_content(row: RoleExample, mode: str, fmt: SelfPromptFormat) -> str:
    if mode == "self-prompt":
        return fmt.render(row.role_prompt, row.answer)
    return row.answer


def build_messages(row: RoleExample, mode: str, fmt: SelfPromptFormat, system_prompt: str | None) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    messages.append({"role": "user", "content": row.question})
    messages.append({"role": "assistant", "content": assistant_content(row, mode, fmt)})
    return messages


def tokenize_messages(tokenizer, messages: list[dict], training_template: str) -> tuple[list[int], list[int]]:
    """input_ids and labels; labels keep only the tokens inside the template's generation markers."""
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=training_template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    labels = [tok if bit else IGNORE_INDEX for tok, bit in zip(ids, mask)]
    return ids, labels


def order_rows(rows: list[RoleExample], row_order: str) -> list[RoleExample]:
    if row_order == "shortest":
        # Measured in characters of fields both modes share, so the order is mode independent.
        return sorted(rows, key=lambda r: (len(r.question) + len(r.role_prompt) + len(r.answer), r.id))
    return list(rows)


def prepare_examples(
    rows: list[RoleExample],
    tokenizer,
    training_template: str,
    *,
    mode: str,
    fmt: SelfPromptFormat,
    system_prompt: str | None,
    max_length: int,
    include_statuses: list[str],
    row_order: str = "file",
    max_rows: int | None = None,
) -> PreparedData:
    excluded: dict[str, list[str]] = {}
    kept: list[TokenizedExample] = []
    for row in order_rows(rows, row_order):
        if max_rows is not None and len(kept) >= max_rows:
            break
        reason = _exclusion_reason(row, tokenizer, training_template, fmt, system_prompt, max_length, include_statuses)
        if reason:
            excluded.setdefault(reason, []).append(row.id)
            continue
        ids, labels = tokenize_messages(tokenizer, build_messages(row, mode, fmt, system_prompt), training_template)
        kept.append(TokenizedExample(id=row.id, input_ids=ids, labels=labels))
    return PreparedData(examples=kept, excluded=excluded)


def _exclusion_reason(row, tokenizer, template, fmt, system_prompt, max_length, include_statuses) -> str | None:
    if row.annotation.status not in include_statuses:
        return f"status-{row.annotation.status}"
    # Checked in both modes: a row that only one mode could train on is dropped from both.
    for mode in MODES:
        ids, labels = tokenize_messages(tokenizer, build_messages(row, mode, fmt, system_prompt), template)
        if len(ids) > max_length:
            return "too-long"  # would be truncated: the answer (or its end of turn) would be cut
        if all(x == IGNORE_INDEX for x in labels):
            return "no-trained-tokens"
        if mode == "self-prompt" and not row.role_prompt.strip():
            return "empty-role"
    return None


def trained_spans(tokenizer, example: TokenizedExample) -> list[tuple[str, bool]]:
    """The example's text as (piece, trained) runs, for --dry-run and tests."""
    runs: list[tuple[list[int], bool]] = []
    for tok, lab in zip(example.input_ids, example.labels):
        trained = lab != IGNORE_INDEX
        if runs and runs[-1][1] == trained:
            runs[-1][0].append(tok)
        else:
            runs.append(([tok], trained))
    return [(tokenizer.decode(ids), trained) for ids, trained in runs]

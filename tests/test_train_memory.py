"""The CPU recipe's memory savings keep the loss's meaning.

The recipe trains in micro-batches of 1 with gradient accumulation (tokens per optimizer step as
before, a fraction of the activations), and TRL's SFTTrainer scores the LM head in chunks instead
of building full-vocabulary logits. Both must leave the loss what it was: the mean over the
assistant tokens of the whole optimizer step. Checked on a tiny Llama with SmolLM2's real
tokenizer and chat template (real transformers, peft and TRL code; only the weights are small).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from selfprompt.jsonl import write_records
from selfprompt.train.config import load_config
from selfprompt.train.data import IGNORE_INDEX, order_rows
from selfprompt.train.recipe import run
from selfprompt.train.template_roles import lima_template_roles

REPO = Path(__file__).resolve().parents[1]
CPU_RECIPE = REPO / "recipes" / "smollm2-135m-lora-cpu.yaml"


@pytest.fixture(scope="module")
def tiny_model(default_model, tmp_path_factory) -> Path:
    """A 2-layer Llama with SmolLM2's vocabulary and tokenizer, random weights, saved as an HF folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_model.transformers_path())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        initializer_range=0.5,  # spread-out logits: per-token losses that differ, so how they are averaged shows
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def role_file(data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lima_role") / "lima-role.jsonl"
    write_records(path, order_rows(lima_template_roles(data_dir / "lima" / "train.jsonl"), "shortest")[:16])
    return path


def test_fused_lm_head_loss_and_gradients_equal_the_plain_loss(tiny_model):
    """TRL's chunked LM head (what SFTTrainer trains with) against full logits and cross-entropy averaged
    over the non-ignored tokens: same loss, same gradient on every weight."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(1)
    plain = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    fused = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    add_fused_lm_head(fused)
    vocab = plain.config.vocab_size
    input_ids = torch.randint(0, vocab, (3, 24))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 18:] = 0  # a padded row
    labels = input_ids.clone()
    labels[:, :10] = IGNORE_INDEX  # prompt
    labels[attention_mask == 0] = IGNORE_INDEX

    logits = plain(input_ids=input_ids, attention_mask=attention_mask).logits
    shift_labels = labels[:, 1:]
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, vocab).float(), shift_labels.reshape(-1), ignore_index=IGNORE_INDEX
    )
    got = fused(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True).loss
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)

    expected.backward()
    got.backward()
    grads_plain = dict(plain.named_parameters())
    for name, p in fused.named_parameters():
        q = grads_plain[name]
        assert p.grad is not None and q.grad is not None, name
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), (name, (p.grad - q.grad).abs().max().item())


def _train(tiny_model, role_file, out, *overrides):
    cfg = load_config(
        CPU_RECIPE,
        [
            f"model={tiny_model}",
            f"data={role_file}",
            f"output_dir={out}",
            "max_rows=8",
            "max_steps=2",
            "save_steps=1000",
            "precision=fp32",
            "lora_dropout=0.0",  # dropout masks differ with the micro-batch shape; the sums must not
            *overrides,
        ],
    )
    run(cfg)
    with (out / "loss.csv").open() as f:
        return [{"loss": float(r["loss"]), "grad_norm": float(r["grad_norm"])} for r in csv.DictReader(f)]


def test_micro_batches_with_accumulation_equal_one_full_batch(tiny_model, role_file, tmp_path):
    """4 rows in one batch (padded) and the same 4 rows as 4 micro-batches of 1 (unpadded): the step's
    loss is the same mean over its assistant tokens, its gradient the same (grad norm before clipping),
    for two optimizer steps (the second after an update from those gradients). The rows differ in their
    numbers of assistant tokens, so a mean of per-micro-batch means would not match."""
    full = _train(tiny_model, role_file, tmp_path / "full", "per_device_batch_size=4", "gradient_accumulation_steps=1")
    micro = _train(
        tiny_model, role_file, tmp_path / "micro", "per_device_batch_size=1", "gradient_accumulation_steps=4"
    )
    assert len(full) == len(micro) == 2
    for a, b in zip(full, micro):
        assert math.isfinite(a["loss"]) and a["loss"] > 1.0  # a random model's loss over a 49k vocabulary
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)

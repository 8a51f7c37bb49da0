"""The weight-first linear product (selfprompt.generate.backends.cpu_linear) against nn.Linear's own.

It must give nn.Linear's result to fp32 rounding where it is used (fp32 CPU inference at WEIGHT_FIRST_ROWS rows),
nn.Linear's exact result everywhere else (training, other row counts, other dtypes), and be what the hf backend's
model runs. Its speed is measured by bench/decode_linears.py, not here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from selfprompt.generate.backends import cpu_linear
from selfprompt.generate.backends.cpu_linear import WEIGHT_FIRST_ROWS, use_weight_first_linears, weight_first_linear


class Calls(TorchFunctionMode):
    """Records the torch functions called inside it (to see which product a forward took)."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def layer(in_features: int = 96, out_features: int = 257, bias: bool = True, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    module = torch.nn.Linear(in_features, out_features, bias=bias)
    use_weight_first_linears(module)
    return module


@pytest.mark.parametrize("rows", list(WEIGHT_FIRST_ROWS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(), (1,)])  # [rows, in] and transformers' [batch, seq, in]
def test_weight_first_rows_agree_with_nn_linear_to_rounding(rows, bias, lead):
    module = layer(bias=bias, seed=rows)
    x = torch.randn(*lead, rows, 96)
    with torch.inference_mode(), Calls() as calls:
        out = module(x)
    assert "mm" in calls.names and "linear" not in calls.names  # the weight-first product was taken
    expected = F.linear(x, module.weight, module.bias)
    assert out.shape == expected.shape == (*lead, rows, 257)
    assert out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [1, max(WEIGHT_FIRST_ROWS) + 1, 64])
def test_other_row_counts_take_nn_linears_own_product_exactly(rows):
    module = layer(seed=rows)
    x = torch.randn(rows, 96)
    with torch.inference_mode(), Calls() as calls:
        out = module(x)
    assert "linear" in calls.names and "mm" not in calls.names
    assert torch.equal(out, F.linear(x, module.weight, module.bias))


def test_training_keeps_nn_linear_and_its_gradients():
    module = layer()
    x = torch.randn(min(WEIGHT_FIRST_ROWS), 96, requires_grad=True)
    out = module(x)  # gradients on: a training step
    assert torch.equal(out, F.linear(x, module.weight, module.bias))
    out.sum().backward()
    assert module.weight.grad is not None and x.grad is not None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_other_dtypes_take_nn_linears_own_product(dtype):
    module = layer().to(dtype)
    x = torch.randn(min(WEIGHT_FIRST_ROWS), 96, dtype=dtype)
    with torch.inference_mode():
        assert torch.equal(module(x), F.linear(x, module.weight, module.bias))


def test_empty_input_and_the_bench_override_of_the_rows():
    module = layer()
    with torch.inference_mode():
        assert module(torch.randn(0, 96)).shape == (0, 257)
    forced = torch.randn(1, 96)
    original = cpu_linear.WEIGHT_FIRST_ROWS
    try:
        cpu_linear.WEIGHT_FIRST_ROWS = range(1, 2)  # what bench/decode_linears.py does to measure every size
        with torch.inference_mode(), Calls() as calls:
            out = module(forced)
        assert "mm" in calls.names
        torch.testing.assert_close(out, F.linear(forced, module.weight, module.bias), rtol=1e-5, atol=1e-5)
        assert out.shape == (1, 257)  # the zero row added for one row is dropped
    finally:
        cpu_linear.WEIGHT_FIRST_ROWS = original


def test_a_model_gets_it_on_every_plain_linear_and_not_on_other_layers():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 300, (min(WEIGHT_FIRST_ROWS), 1))
    with torch.inference_mode():
        before = model(input_ids=ids).logits
    assert use_weight_first_linears(model) == 2 * 7 + 1  # q k v o gate up down per layer, and the output layer
    assert use_weight_first_linears(model) == 15  # idempotent
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied weights stay tied
    assert type(model.model.embed_tokens).forward is torch.nn.Embedding.forward
    with torch.inference_mode():
        after = model(input_ids=ids).logits
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_a_lora_layer_keeps_its_forward_and_its_inner_linears_convert():
    peft = pytest.importorskip("peft")
    model = torch.nn.Sequential(torch.nn.Linear(32, 32))
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["0"], lora_dropout=0.0))
    wrapped = lora.base_model.model[0]
    assert use_weight_first_linears(lora) == 3  # the base layer, lora_A and lora_B
    assert "forward" not in vars(wrapped) and vars(wrapped.base_layer)["forward"].func is weight_first_linear


def test_the_hf_backend_runs_it_and_records_the_choice(hf_backend):
    decision = hf_backend.decisions["linear_product"]
    assert hf_backend.device == "cpu" and decision["resolved"].startswith("(W @ x.T).T")
    assert vars(hf_backend.model.lm_head)["forward"].func is weight_first_linear
    assert "decode_linears.json" in decision["reason"]

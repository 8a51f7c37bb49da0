"""Linear layers for CPU decoding: the weight as the left operand of the matrix product.

A decode step multiplies every linear layer's weight [out, in] by a few rows [rows, in], one per sequence.
`nn.Linear` computes `x @ W.T`, and PyTorch's CPU BLAS (MKL) is slow at that orientation for a few rows: on this
project's 2-core AMD EPYC a whole decode step of SmolLM2-135M (211 products reading ~540 MB of fp32 weights) at 2
rows took 129 ms with `nn.Linear` against 86 ms with `(W @ x.T).T` (127 against 74 ms in a worker thread), more
than at 8 rows (107 ms); 1.2-1.8x less time at 2-4 rows (bench/decode_linears.py, whose results are in
bench/results/decode_linears.json). The same dot products are summed in another order, so outputs agree to fp32
rounding (logits within 1e-4 there, the same greedy tokens), not bit for bit.

Used for fp32 inference on the CPU at `WEIGHT_FIRST_ROWS` rows only: training (gradients), one row, prefill (many
rows), other dtypes, GPUs and a model under `torch.compile` keep `nn.Linear`'s own product.
"""

from __future__ import annotations

from functools import partial
from typing import Any

# Where the weight-first product was faster per decode step of the default model both in the main thread and in a
# worker thread (the serving loop's), in every run (bench/results/decode_linears.json). At one row it was faster in
# the main thread but slower in the worker thread; from 6 rows on the difference was a few percent either way and
# changed sign between runs.
WEIGHT_FIRST_ROWS = range(2, 5)


def weight_first_linear(self: Any, input: Any) -> Any:
    """`nn.Linear.forward` computing `(W @ x.T).T` for a few fp32 rows on the CPU, else the module's own product.

    input: [..., in_features]; returns [..., out_features], contiguous, like `nn.Linear`."""
    import torch
    import torch.nn.functional as F

    if torch.compiler.is_compiling():
        # A compiled model leaves the choice of product to the compiler, which then sees an unpatched model's graph.
        return F.linear(input, self.weight, self.bias)
    rows = input.numel() // max(input.shape[-1], 1) if input.dim() else 0
    if (
        not WEIGHT_FIRST_ROWS.start <= rows < WEIGHT_FIRST_ROWS.stop
        or torch.is_grad_enabled()
        or input.device.type != "cpu"
        or input.dtype != torch.float32
        or self.weight.dtype != torch.float32
    ):
        return F.linear(input, self.weight, self.bias)
    flat = input.reshape(rows, input.shape[-1])
    if rows == 1:
        # One row would be a matrix-vector product, which MKL runs at half the speed of a product with two
        # columns (measured: 9.8 against 4.2 ms for the 49k x 576 output layer); the zero row is dropped below.
        flat = torch.cat([flat, flat.new_zeros(1, flat.shape[1])])
    out = torch.mm(self.weight, flat.t()).t()[:rows].contiguous()  # [rows, out_features]
    if self.bias is not None:
        out += self.bias
    return out.reshape(*input.shape[:-1], out.shape[-1])


def use_weight_first_linears(model: Any) -> int:
    """Give every `torch.nn.Linear` of `model` the `weight_first_linear` forward (idempotent).

    Modules of other classes (a peft LoRA layer, a quantized linear) keep their forward; their inner
    `nn.Linear`s are converted. Returns how many layers use it."""
    import torch

    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            # A partial, not a bound method: pickle (torch.save of the whole model, worker processes) finds a
            # bound method again by its name on the module, which has none; deepcopy binds the copy either way.
            module.forward = partial(weight_first_linear, module)
            count += 1
    return count

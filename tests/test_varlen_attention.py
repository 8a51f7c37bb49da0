"""varlen_sdpa (selfprompt.generate.batching) against transformers' own packed "sdpa" call.

Inside transformers' continuous-batching loop every request of a step is packed into one sequence and
attention runs over all of their keys with a block-diagonal, end-aligned causal mask. varlen_sdpa must
give the same output request by request, for decode rows (one new token), prefill chunks with and
without earlier tokens in the cache, and grouped key/value heads; and leave every other call alone.
"""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from selfprompt.generate.batching import varlen_sdpa


class Attention(torch.nn.Module):
    def __init__(self, heads: int, kv_heads: int):
        super().__init__()
        self.num_key_value_groups = heads // kv_heads
        self.is_causal = True


def packed(q_lens: list[int], k_lens: list[int], heads: int, kv_heads: int, dim: int = 16):
    """Random packed query/key/value and transformers' additive block-diagonal mask for requests whose
    new tokens (q_lens) are the last of their keys (k_lens)."""
    generator = torch.Generator().manual_seed(sum(q_lens) * 31 + sum(k_lens))
    total_q, total_k = sum(q_lens), sum(k_lens)
    query = torch.randn(1, heads, total_q, dim, generator=generator)
    key = torch.randn(1, kv_heads, total_k, dim, generator=generator)
    value = torch.randn(1, kv_heads, total_k, dim, generator=generator)
    mask = torch.full((1, 1, total_q, total_k), float("-inf"))
    cu_q, cu_k = [0], [0]
    for n_q, n_k in zip(q_lens, k_lens):
        q0, k0 = cu_q[-1], cu_k[-1]
        for r in range(n_q):
            mask[0, 0, q0 + r, k0 : k0 + n_k - n_q + r + 1] = 0.0
        cu_q.append(q0 + n_q)
        cu_k.append(k0 + n_k)
    kwargs = {
        "cu_seq_lens_q": torch.tensor(cu_q, dtype=torch.int32),
        "cu_seq_lens_k": torch.tensor(cu_k, dtype=torch.int32),
        "read_index": [],
        "scaling": dim**-0.5,
    }
    return query, key, value, mask, kwargs


@pytest.mark.parametrize(
    ("q_lens", "k_lens", "heads", "kv_heads"),
    [
        ([1, 1, 1], [40, 7, 129], 9, 3),  # decode steps, grouped heads (SmolLM2-135M's 9 over 3)
        ([5, 1, 12], [5, 33, 20], 9, 3),  # a first prefill chunk, a decode row, a chunk after cached tokens
        ([3, 1], [64, 2], 4, 4),  # no grouping
        ([1, 4], [9, 4], 8, 1),  # one key/value head for all
    ],
)
def test_varlen_sdpa_equals_the_packed_call_with_its_block_diagonal_mask(q_lens, k_lens, heads, kv_heads):
    query, key, value, mask, kwargs = packed(q_lens, k_lens, heads, kv_heads)
    module = Attention(heads, kv_heads)
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, **kwargs)
    got, weights = varlen_sdpa(module, query, key, value, mask, **kwargs)
    assert weights is None
    assert got.shape == expected.shape == (1, sum(q_lens), heads, query.shape[-1])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_varlen_sdpa_passes_other_calls_to_transformers():
    """Ordinary batched generate (no packing offsets) and a sliding-window layer get transformers' result."""
    generator = torch.Generator().manual_seed(0)
    module = Attention(4, 2)
    query = torch.randn(2, 4, 3, 8, generator=generator)
    key = torch.randn(2, 2, 3, 8, generator=generator)
    value = torch.randn(2, 2, 3, 8, generator=generator)
    expected, _ = sdpa_attention_forward(module, query, key, value, None, scaling=0.3)
    got, _ = varlen_sdpa(module, query, key, value, None, scaling=0.3)
    torch.testing.assert_close(got, expected)
    query, key, value, mask, kwargs = packed([2, 1], [6, 3], 4, 2)
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, **kwargs)
    got, _ = varlen_sdpa(module, query, key, value, mask, sliding_window=4, **kwargs)
    torch.testing.assert_close(got, expected)

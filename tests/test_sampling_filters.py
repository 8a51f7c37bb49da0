"""The per-request top-k / top-p and the draw of `selfprompt serve`'s batching loop
(selfprompt.generate.batching) against transformers' own.

transformers' continuous batching filters each request's scores with its own top-k and top-p by sorting the
whole vocabulary of every row, twice a token, and draws among all of it. The replacements look at the most
likely tokens only; they must leave the same scores (a sampled token is drawn from them) for greedy rows
(top_k=1), sampled rows with and without a top-k (the default model has none), top_p at its edges, and a mix of
all in one batch. Among equal scores cut through by the top-p threshold transformers' own sort picks
arbitrarily: there, the tokens that differ must have the score at the cut, and the count may differ by one. The
draw among the kept tokens must follow their probabilities, and fall back to transformers' own where many tokens
are kept or log-probabilities are asked for. Edge cases and sweeps: tests/test_sampling_filters_hostile.py.
"""

from __future__ import annotations

import pytest
import torch
from transformers.generation.continuous_batching import cb_logits_processors as cb
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from selfprompt.generate.batching import _cb_warpers, _sample_among_kept, use_fast_sampling

VOCAB = 4096


def both_chains():
    """transformers' per-request temperature, top-k, top-p, and the same with the replacements."""
    ours_k, ours_p = _cb_warpers()
    temperature = cb.ContinuousBatchingTemperatureLogitsWarper(TemperatureLogitsWarper(0.5))
    theirs = (
        cb.ContinuousBatchingTopKLogitsWarper(TopKLogitsWarper(1)),
        cb.ContinuousBatchingTopPLogitsWarper(TopPLogitsWarper(0.5)),
    )
    ours = (ours_k(TopKLogitsWarper(1)), ours_p(TopPLogitsWarper(0.5)))
    return temperature, theirs, ours


def floats(values):
    """Per-row float arguments as transformers stores them: float32 bits in an int32 tensor."""
    return torch.tensor(values, dtype=torch.float32).view(torch.int32)


def ints(values):
    return torch.tensor(values, dtype=torch.int32)


def run(chain, temperature, scores, temperatures, top_ks, top_ps):
    top_k, top_p = chain
    scores = temperature(scores, floats(temperatures))
    scores = top_k(scores, ints(top_ks))
    return top_p(scores, floats(top_ps))


@pytest.mark.parametrize(
    ("top_ks", "top_ps"),
    [
        ([VOCAB] * 8, [0.9] * 8),  # the annotation template on the default model: top-p, no top-k
        ([50] * 8, [0.9] * 8),  # top-k then top-p
        ([1, 50, 50, 1], [1.0, 0.9, 0.5, 1.0]),  # greedy rows (top_k=1) beside sampled ones
        ([50, 7, 200, 2], [1.0, 0.99, 0.1, 0.95]),  # different k and p per row
        ([VOCAB, 50, 1], [0.9, 0.9, 1.0]),  # a row without top-k beside others
        ([40] * 3, [0.0, 1e-6, 0.999999]),  # p at its edges: only the likeliest, nearly all
        ([VOCAB] * 3, [0.0, 0.999, 0.99999]),  # nearly all of a whole vocabulary: widening, then the full sort
    ],
)
@pytest.mark.parametrize("ties", [False, True])
def test_the_replacements_leave_the_same_scores_as_transformers(top_ks, top_ps, ties):
    generator = torch.Generator().manual_seed(len(top_ks) * 7 + int(ties))
    scores = torch.randn(len(top_ks), VOCAB, generator=generator) * 3
    if ties:  # many equal scores: a threshold is a value, and equal values share its fate
        scores = scores.round()
    temperature, theirs, ours = both_chains()
    temperatures = [0.7] * len(top_ks)
    expected = run(theirs, temperature, scores.clone(), temperatures, top_ks, top_ps)
    got = run(ours, temperature, scores.clone(), temperatures, top_ks, top_ps)
    kept, kept_expected = got > float("-inf"), expected > float("-inf")
    assert bool((kept.sum(-1) >= 1).all())
    # Equal scores at the cut in another order also sum in another order: the count may move by one there.
    assert bool(((kept.sum(-1) - kept_expected.sum(-1)).abs() <= int(ties)).all())
    if not ties:
        assert torch.equal(got, expected)
        assert bool((kept.sum(-1) <= torch.tensor(top_ks)).all())
    else:  # transformers' own sort orders equal scores arbitrarily: which of those at the cut stay may differ
        lowest_kept = torch.where(kept_expected, expected, torch.inf).min(-1, keepdim=True).values
        differ = kept != kept_expected
        score = torch.where(kept, got, expected)  # a differing token's score, from the side that kept it
        assert bool((score[differ] == lowest_kept.expand_as(score)[differ]).all())
        assert torch.equal(got[kept & kept_expected], expected[kept & kept_expected])


def test_greedy_rows_keep_only_the_argmax():
    scores = torch.randn(3, VOCAB, generator=torch.Generator().manual_seed(3))
    temperature, _, ours = both_chains()
    got = run(ours, temperature, scores.clone(), [1.0] * 3, [1] * 3, [1.0] * 3)
    assert torch.equal(got.argmax(-1), scores.argmax(-1))
    assert torch.equal((got > float("-inf")).sum(-1), torch.ones(3, dtype=torch.long))


def test_the_batching_loop_builds_the_replacements():
    from transformers.generation.continuous_batching.model_runner import ModelRunner

    use_fast_sampling()
    use_fast_sampling()  # twice: transformers' own draw stays the fallback, not ours calling itself
    assert ModelRunner._sample is _sample_among_kept
    warpers = LogitsProcessorList([TemperatureLogitsWarper(0.5), TopKLogitsWarper(1), TopPLogitsWarper(0.5)])
    processors = cb.ContinuousBatchingLogitsProcessorList(warpers, per_request_processors=True)
    assert [type(p) for p in processors.logits_processor[1:]] == list(_cb_warpers())
    assert processors.supported_keys == {"temperature": float, "top_k": int, "top_p": float}


class Runner:
    """What `_sample_among_kept` reads of transformers' ModelRunner."""

    def __init__(self, do_sample: bool = True, return_logprobs: bool = False):
        self.do_sample, self.return_logprobs = do_sample, return_logprobs


def draw(scores: torch.Tensor, runner: Runner | None = None) -> torch.Tensor:
    output_ids = torch.full((2, scores.size(0) + 3), -1, dtype=torch.int32)
    _sample_among_kept(runner or Runner(), scores.unsqueeze(0), output_ids)
    assert bool((output_ids[0, scores.size(0) :] == -1).all()), "only the rows' own places are written"
    return output_ids[0, : scores.size(0)].long()


def test_the_draw_among_kept_tokens_follows_their_probabilities():
    torch.manual_seed(0)
    scores = torch.full((3, VOCAB), float("-inf"))
    kept = torch.tensor([7, 1000, 4095])
    scores[0, kept] = torch.tensor([0.0, 1.0, 2.0])  # probabilities 0.090, 0.245, 0.665
    scores[1, 42] = 3.0  # greedy: one token left
    scores[2, kept[:2]] = 0.0  # two equal tokens
    counts = torch.zeros(3, VOCAB)
    n = 6000
    for _ in range(n):
        counts[torch.arange(3), draw(scores)] += 1
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), -1) * n
    sd = (expected * (1 - expected / n)).sqrt()
    assert bool(((counts[0, kept] - expected).abs() < 5 * sd).all()), (counts[0, kept], expected)
    assert counts[0].sum() == counts[0, kept].sum() == n
    assert counts[1, 42] == n
    assert abs(counts[2, 7] - n / 2) < 5 * (n / 4) ** 0.5 and counts[2, kept[:2]].sum() == n


def test_the_draw_falls_back_to_transformers_where_it_saves_nothing(monkeypatch):
    import selfprompt.generate.batching as batching

    calls = []
    monkeypatch.setattr(batching, "_TRANSFORMERS_SAMPLE", [lambda runner, scores, out: calls.append(runner)])
    wide = torch.randn(2, VOCAB)  # no filter ran: every token kept
    narrow = torch.full((2, VOCAB), float("-inf"))
    narrow[:, :3] = 1.0
    draw(wide)
    draw(narrow, Runner(return_logprobs=True))
    draw(narrow, Runner(do_sample=False))
    assert len(calls) == 3
    assert bool((draw(narrow) < 3).all()) and len(calls) == 3

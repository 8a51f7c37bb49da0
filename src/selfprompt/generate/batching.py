"""Continuous batching for `selfprompt serve` on the hf backend, through transformers' own scheduler.

transformers' ContinuousBatchingManager (`model.init_continuous_batching()`) keeps one generation loop
in a background thread: a request joins the running batch as soon as it arrives (its prompt is
prefilled in chunks beside the others' decode steps) and leaves it when it ends, freeing its pages of
the paged KV cache. It runs on CPU with the model's own "sdpa" attention (no paged kernel needed),
and with a peft LoRA adapter loaded (the adapter's layers sit inside the base model it drives).

What it lacks, and what this module adds:

* stop strings: it stops on end-of-sequence tokens only. We decode each request's tokens as they
  arrive, cut at the first stop string, never emit the characters that could start one, and cancel
  the request in the loop once one is found.
* per-request sampling settings: its loop has one `do_sample` for all requests. We run it sampling,
  with transformers' per-request temperature / top-k / top-p processors, and make a greedy request
  one with top_k=1 (only the most likely token survives, so the draw is the argmax). What it cannot
  honour is a per-request seed: one random stream serves the whole loop, so a sampled reply depends
  on what else was drawn before and beside it (as in HFBackend.generate, where one seed serves a
  whole batch). `seeded_sampling=True` keeps sampled requests reproducible instead: they pause the
  loop and run alone through the backend's own seeded `generate`, unbatched.
* sampling filters that cost what they keep: its per-request top-k and top-p sort the whole vocabulary
  of every row, twice a token, even for a request with no top-k (the default model has none). Measured on
  2 CPU cores, 8 annotation requests (top_p 0.9): 15% of each decode step, and the draw another 4% (an
  exponential variate per vocabulary token). `use_fast_sampling` swaps in filters that look at the most
  likely tokens only and keep the same tokens (35 -> 4.5 ms a step for 8 rows of 49k scores), and a draw
  among the kept tokens.
* prefill (`assistant_prefix`) needs nothing: it is part of the rendered prompt's tokens.
* attention that grows with each request's own length: on a device without a flash kernel its loop packs
  every request of a step into one sequence and runs "sdpa" over all their keys with a block-diagonal mask,
  so a decode step of B requests of L tokens costs B x (B x L) and expands the grouped key/value heads over
  all of them. Measured on 2 CPU cores, 8 requests of ~900 tokens: attention and the head expansion were
  60% of each step. `varlen_sdpa` computes each request's attention over its own keys (see there).

Greedy outputs equal the backend's unbatched `generate` token for token (tests/test_serve_batching.py).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from selfprompt.generate.backends.base import ChatRequest, ChatResponse, Sampling
from selfprompt.generate.backends.hf import HFBackend, cut_at_stop, refuse_response_format, render_prompt
from selfprompt.records import Message

# Prompt tokens planned for per request when sizing the KV cache; longer prompts still run, they
# only make fewer requests fit at once (the scheduler queues the rest). One request must fit in the whole
# cache (and in the model's context): a longer one is refused (RequestTooLong), since transformers' loop
# cannot schedule it and stops for every request.
PROMPT_TOKENS_PLANNED = 1024
LOOP_CHECK_S = 1.0  # how often a waiting request checks that the loop thread still runs


def varlen_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> tuple[Any, None]:
    """transformers' "sdpa" attention, request by request inside a continuous batch.

    Called by transformers in place of its sdpa function (see `use_varlen_sdpa`). Inside the batching loop
    (`cu_seq_lens_q` and `read_index` among the kwargs) query is [1, heads, Tq, head_dim] and key/value
    [1, kv_heads, Tk, head_dim] for all requests packed end to end, with `cu_seq_lens_q`/`cu_seq_lens_k` (int
    tensors of B + 1 offsets) marking each request's rows. Each request attends to its own keys only, causally
    and aligned at the end (its new tokens are the last of its keys): the same result as the packed call with
    its block-diagonal mask (tests/test_varlen_attention.py), at B times less work. Any
    other call (ordinary generate, training, a sliding-window layer) goes to transformers' own function.
    Returns ([1, Tq, heads, head_dim], None), as transformers' sdpa does."""
    import torch

    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    packed = cu_q is not None and torch.is_tensor(cu_k) and "read_index" in kwargs and query.shape[0] == 1
    windowed = kwargs.get("sliding_window") or getattr(module, "sliding_window", None)
    if not packed or windowed or hasattr(module, "sinks") or kwargs.get("softcap"):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    scale = kwargs.get("scaling")
    heads, kv_heads, dim = query.shape[1], key.shape[1], query.shape[-1]
    groups = heads // kv_heads
    out = torch.empty_like(query)
    q_offsets, k_offsets = cu_q.tolist(), cu_k.tolist()
    for q0, q1, k0, k1 in zip(q_offsets, q_offsets[1:], k_offsets, k_offsets[1:]):
        n_q, n_k = q1 - q0, k1 - k0
        if n_q == 0:
            continue
        q, k, v = query[:, :, q0:q1], key[:, :, k0:k1], value[:, :, k0:k1]
        if n_q == 1:
            # A decode step sees every key, so no mask: the heads of a group become query rows over their one
            # key/value head, and the keys and values are never expanded to every head.
            rows = sdpa(q.reshape(1, kv_heads, groups, dim), k, v, scale=scale)
            out[:, :, q0:q1] = rows.reshape(1, heads, 1, dim)
        else:
            # Query row r is key n_k - n_q + r: it sees every key up to that one.
            mask = torch.ones(n_q, n_k, dtype=torch.bool, device=query.device).tril(n_k - n_q)
            if groups > 1:
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            out[:, :, q0:q1] = sdpa(q, k, v, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).contiguous(), None


def use_varlen_sdpa() -> None:
    """Route transformers' "sdpa" attention through `varlen_sdpa` in this process (idempotent).

    transformers' batching loop accepts only "sdpa", "paged|eager" or a flash attention, so the function is
    registered under "sdpa"; every call outside a continuous batch still reaches transformers' own."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    ALL_ATTENTION_FUNCTIONS["sdpa"] = varlen_sdpa


def _cb_warpers() -> tuple[type, type]:
    """The per-request top-k / top-p warpers below, built on transformers' own (imported on first use)."""
    global _WARPERS
    if _WARPERS is None:
        import torch
        from transformers.generation.continuous_batching import cb_logits_processors as cb

        class TopKByPartialSort(cb.ContinuousBatchingTopKLogitsWarper):
            """transformers' per-request top-k, with the k-th largest score found by a partial sort.

            transformers sorts the whole vocabulary of every row to read its k-th largest score, even for a row whose
            k is the vocabulary (no top-k: the model's generation config has none). Here such a row is left alone,
            and `torch.topk` to the largest k of the others finds the same value (a value, not a position, is the
            threshold, so ties fare the same): the scores left are identical (tests/test_sampling_filters.py).
            """

            def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
                vocab = scores.size(-1)
                top_k = tensor_arg[: scores.size(0)].clamp(max=vocab).to(torch.int64)  # [B]
                filtered = top_k < vocab
                if not bool(filtered.any()):
                    return scores
                k_max = int(top_k[filtered].max())
                largest = torch.topk(scores, k_max, dim=-1).values  # [B, k_max], descending
                thresholds = largest.gather(-1, (top_k.clamp(max=k_max) - 1).unsqueeze(-1))  # [B, 1]
                thresholds = thresholds.masked_fill(~filtered.unsqueeze(-1), float("-inf"))
                return scores.masked_fill(scores < thresholds, self.filter_value)

        class TopPByPartialSort(cb.ContinuousBatchingTopPLogitsWarper):
            """transformers' per-request top-p (nucleus), over the few most likely tokens instead of a full sort.

            transformers sorts each whole row ascending, adds the probabilities up and drops every token whose sum
            (itself and all less likely ones) is at most 1 - top_p. Only the most likely tokens can stay, so the
            same sums are formed here for them alone (`torch.topk`, 64 at first, widened until the tokens outside
            hold at most 1 - top_p: all of those are dropped), plus what all the others hold. The same tokens stay,
            but for a last bit of rounding where a sum lands on the cut (at most the least likely kept token), and
            among equal probabilities at the cut, which transformers' own unstable sort orders arbitrarily
            (tests/test_sampling_filters.py, tests/test_sampling_filters_hostile.py). A row with top_p >= 1 is left
            alone (transformers drops only tokens of probability 0, which cannot be drawn). Flat rows whose nucleus
            is over an eighth of the vocabulary, and NaN or +inf scores, take transformers' own full sort.
            """

            def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
                vocab = scores.size(-1)
                top_p = tensor_arg[: scores.size(0)].view(dtype=torch.float32)  # [B]
                filtered = top_p < 1.0
                if not bool(filtered.any()):
                    return scores
                probs = scores.softmax(dim=-1)  # [B, V]
                if not bool(torch.isfinite(probs).all()):  # a NaN or +inf score: transformers' way (its draw fails)
                    return super().__call__(scores, tensor_arg)
                width = min(max(64, self.min_tokens_to_keep), vocab)
                while True:
                    likeliest, indices = torch.topk(probs, width, dim=-1)  # [B, width], descending
                    # Summed on its own, small terms first like transformers' sums, not as 1 - (a sum near 1).
                    rest = probs.scatter(-1, indices, 0.0).sum(-1)  # [B]: what the other tokens hold
                    if width == vocab or bool((rest[filtered] <= 1 - top_p[filtered]).all()):
                        break  # every token outside is dropped
                    width *= 8
                    if width > vocab // 8:  # a flat row (a high temperature): its full sort is cheaper
                        return super().__call__(scores, tensor_arg)
                # Each token's sum as transformers forms it: itself and every less likely token.
                at_most = rest.unsqueeze(-1) + likeliest.flip(-1).cumsum(-1).flip(-1)  # [B, width]
                keep = at_most > (1 - top_p).unsqueeze(-1)
                keep[:, : self.min_tokens_to_keep] = True
                kept = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, indices, keep)
                kept |= ~filtered.unsqueeze(-1)
                return scores.masked_fill(~kept, self.filter_value)

        _WARPERS = (TopKByPartialSort, TopPByPartialSort)
    return _WARPERS


_WARPERS: tuple[type, type] | None = None


def _sample_among_kept(runner: Any, scores: Any, output_ids: Any) -> None:
    """transformers' `ModelRunner._sample`, drawing each row's token among the tokens its filters kept.

    transformers takes the softmax of every row's whole vocabulary and draws with `torch.multinomial` over all of
    it (an exponential variate per token: ~4% of a decode step of 8 requests on 2 CPU cores). After top-k / top-p
    only a few tokens per row are finite; drawing among those, with their softmax, is the same distribution
    (the others have probability 0). Greedy rows (one token kept) get it; returning log-probabilities, not
    sampling, or rows that keep more than an eighth of the vocabulary take transformers' own path.
    scores: [1, rows, vocab]; writes the drawn token ids into output_ids[0, :rows]."""
    import torch

    rows = scores[0]  # [rows, vocab]
    if runner.do_sample and not runner.return_logprobs:
        kept = int((rows > float("-inf")).sum(-1).max())
        if 0 < kept <= rows.size(-1) // 8:
            likeliest, indices = torch.topk(rows, kept, dim=-1)  # a row keeping fewer has -inf, probability 0
            drawn = torch.multinomial(likeliest.softmax(dim=-1), num_samples=1)  # [rows, 1]
            next_tokens = indices.gather(-1, drawn).squeeze(-1)
            output_ids[0, : next_tokens.size(0)].copy_(next_tokens)
            return
    _TRANSFORMERS_SAMPLE[0](runner, scores, output_ids)


_TRANSFORMERS_SAMPLE: list[Any] = []  # transformers' own ModelRunner._sample, once replaced


def use_fast_sampling() -> None:
    """Make transformers' batching loop filter with `_cb_warpers()` (its per-request top-k and top-p) and draw
    with `_sample_among_kept` (idempotent). Each keeps the tokens transformers' own keeps (see there for the
    rounding and ties caveat of top-p) and draws from the same distribution."""
    from transformers.generation.continuous_batching import cb_logits_processors as cb
    from transformers.generation.continuous_batching.model_runner import ModelRunner
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    top_k, top_p = _cb_warpers()
    cb.CLASSIC_TO_CB_PROCESSORS_MAP[TopKLogitsWarper] = top_k
    cb.CLASSIC_TO_CB_PROCESSORS_MAP[TopPLogitsWarper] = top_p
    if not _TRANSFORMERS_SAMPLE:
        _TRANSFORMERS_SAMPLE.append(ModelRunner._sample)
    ModelRunner._sample = _sample_among_kept


class RequestTooLong(ValueError):
    """The prompt plus max_tokens do not fit in the KV cache or the model's context (HTTP 400).

    `prompt_tokens`, `max_tokens`, `capacity_tokens`: the request's counts and the most one request may take.
    `prompt_fills_it`: the prompt alone leaves no room for one generated token (the messages are at fault, whatever
    the token limit)."""

    def __init__(self, prompt_tokens: int, max_tokens: int, capacity_tokens: int) -> None:
        self.prompt_tokens, self.max_tokens, self.capacity_tokens = prompt_tokens, max_tokens, capacity_tokens
        self.prompt_fills_it = prompt_tokens >= capacity_tokens
        super().__init__(self.describe("max_tokens"))

    def describe(self, limit: str) -> str:
        """The message, with the token limit named `limit` (as the request spelt it: 'max_completion_tokens')."""
        return (
            f"the prompt ({self.prompt_tokens} tokens) plus {limit} ({self.max_tokens}) exceed {self.capacity_tokens} "
            "tokens, the most one request may take on this server (its KV cache and the model's context; start it "
            "with a larger --max-tokens to plan for longer prompts)"
        )


class BatchLoopDown(RuntimeError):
    """The continuous-batching loop thread stopped (a fatal error in it); the server cannot answer (HTTP 503)."""


@dataclass
class Outcome:
    """How one request ended: filled in when its text has been fully yielded."""

    finish_reason: str = "stop"  # "stop" (end of sequence or a stop string) or "length" (max_tokens reached)
    prompt_tokens: int = 0
    completion_tokens: int = 0  # generated tokens, the end-of-sequence token included when there was one
    text: str = field(default="")  # the whole reply, equal to the concatenation of the yielded pieces


class ContinuousBatcher:
    """One transformers continuous-batching loop over an HFBackend's model, shared by all requests.

    `max_batch` caps the requests decoded together; the KV cache is sized for that many requests of
    `PROMPT_TOKENS_PLANNED` prompt tokens plus `max_tokens` new ones (fp32 SmolLM2-135M: ~46 KB a token,
    so ~1.1 GB at 16 x (1024 + 512)). Call `start()` before use and `close()` after. While it runs, the loop owns
    the model: any other generation on it goes through `generate_alone` (an unbatched `generate` run beside the
    loop's thread once gave a wrong reply in the tests).
    """

    def __init__(
        self,
        backend: HFBackend,
        *,
        max_batch: int = 16,
        max_tokens: int = 512,
        page_size: int = 64,
        seeded_sampling: bool = False,
    ):
        from transformers.generation import ContinuousBatchingConfig

        self.backend = backend
        self.tokenizer = backend.tokenizer
        model = backend.model
        # A PeftModel wraps the model whose modules carry the adapter; that model owns the CB loop.
        self.model = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.max_batch = max_batch
        self.seeded_sampling = seeded_sampling
        base_config = self.model.generation_config
        generation_config = base_config.__class__.from_dict(base_config.to_dict())
        # What HFBackend's generate samples with besides temperature and top_p: the model's top_k, if any.
        self.sampling_top_k = base_config.top_k or self.model.config.vocab_size
        # Sampling, so that each request's own settings apply; the values here only make transformers create
        # the per-request processors (a value of None or 1.0 creates none) and are overridden by every request.
        generation_config.update(do_sample=True, temperature=0.5, top_k=1, top_p=0.5, max_new_tokens=max_tokens)
        if generation_config.pad_token_id is None:
            generation_config.pad_token_id = self.tokenizer.pad_token_id
        self.eos_ids = self._eos_ids(generation_config)
        tokens_planned = max_batch * (PROMPT_TOKENS_PLANNED + max_tokens)
        self.cb_config = ContinuousBatchingConfig(
            page_size=page_size,
            # Sized from the work, not from free memory: on CPU that is the machine's RAM, shared with others.
            num_blocks=math.ceil(tokens_planned / page_size),
            max_batch_tokens=max(256, 32 * max_batch),  # tokens per forward pass: decode steps plus prefill chunks
            max_requests_per_batch=max_batch,
            use_cuda_graph=False,
            auto_switch_to_flash=False,  # keep the attention the model was loaded with (and its outputs)
            per_request_processors=True,
            seed=0,
        )
        self.generation_config = generation_config
        context = getattr(self.model.config, "max_position_embeddings", None) or tokens_planned
        self.capacity_tokens = min(self.cb_config.num_blocks * page_size, context)  # one request's most tokens
        self.manager: Any = None
        self._ids = itertools.count()

    def _eos_ids(self, generation_config: Any) -> set[int]:
        eos = generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        # HFBackend ends a reply at the first eos or pad token; the same here, so the texts agree.
        return ids | ({self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None})

    def start(self) -> None:
        # One token of ordinary generate first, in the calling thread. Measured on a 2-core CPU: without it,
        # every step of the loop thread ran 4-5x slower (30 s against 7 s for 24 tokens), however many
        # requests followed; with it, the loop ran as fast as generate. The cause was not established.
        warm_up = ChatRequest(messages=[Message(role="user", content="Hi")], sampling=Sampling(max_tokens=1))
        with self.backend._lock:
            self.backend.generate([warm_up])
        use_varlen_sdpa()
        use_fast_sampling()
        self.manager = self.model.init_continuous_batching(
            generation_config=self.generation_config, continuous_batching_config=self.cb_config
        )
        self.manager.start()

    def close(self) -> None:
        if self.manager is not None:
            self.manager.stop(block=True, timeout=10)
            self.manager = None

    def alive(self) -> bool:
        """Whether the loop thread runs (False before start, after close, and after a fatal error in it)."""
        return self.manager is not None and self.manager.is_running()

    def admit(self, request: ChatRequest) -> list[int]:
        """The request's prompt token ids, once it is known to fit. Raises RequestTooLong (prompt + max_tokens over
        `capacity_tokens`) or BatchLoopDown."""
        prompt_ids = self.tokenizer(render_prompt(self.tokenizer, request), add_special_tokens=False)["input_ids"]
        if len(prompt_ids) + request.sampling.max_tokens > self.capacity_tokens:
            raise RequestTooLong(len(prompt_ids), request.sampling.max_tokens, self.capacity_tokens)
        if self.batches(request) and not self.alive():
            raise BatchLoopDown("the server's batching loop has stopped (see its log); restart the server")
        return prompt_ids

    def batches(self, request: ChatRequest) -> bool:
        """Whether `request` joins the shared batch, or runs alone with its own seed (sampled, seeded_sampling)."""
        return request.sampling.temperature == 0 or not self.seeded_sampling

    def _processor_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        sampling = request.sampling
        if sampling.temperature == 0:  # greedy: only the most likely token is left to draw
            return {"temperature": 1.0, "top_k": 1, "top_p": 1.0}
        return {
            "temperature": float(sampling.temperature),
            "top_k": self.sampling_top_k,
            "top_p": float(sampling.top_p),
        }

    async def stream(self, request: ChatRequest, outcome: Outcome) -> AsyncIterator[str]:
        """Yield the reply's text in pieces as the batch produces it; fill `outcome` at the end.

        A stop string is never emitted, not even its first characters. Raises RequestTooLong or BatchLoopDown
        (see admit), BatchLoopDown when the loop dies while the request waits, RuntimeError when the
        loop fails the request; ConfigError for response_format (the hf backend cannot constrain output).
        """
        refuse_response_format(request)
        prompt_ids = self.admit(request)
        if not self.batches(request):
            async for piece in self._alone(request, outcome):
                yield piece
            return
        sampling = request.sampling
        outcome.prompt_tokens = len(prompt_ids)
        request_id = f"sp-{next(self._ids)}"
        outputs: asyncio.Queue = asyncio.Queue()
        self.manager.register_result_handler(request_id, outputs.put_nowait)
        self.manager.add_request(
            prompt_ids,
            request_id=request_id,
            max_new_tokens=sampling.max_tokens,
            streaming=True,
            eos_token_id=sorted(self.eos_ids),
            **self._processor_kwargs(request),
        )
        stops = sampling.stop
        # Hold back as many characters as could be the start of a stop string split across pieces.
        hold = max((len(s) for s in stops), default=1) - 1
        sent = ""
        loop_done = False  # whether the loop itself ended the request (else it must be cancelled)
        try:
            while True:
                try:
                    output = await asyncio.wait_for(outputs.get(), LOOP_CHECK_S)
                except asyncio.TimeoutError:
                    if not self.alive():  # it died with this request in it: no output will ever come
                        loop_done = True
                        raise BatchLoopDown(f"the batching loop stopped while request {request_id} ran") from None
                    continue
                if output.error:
                    raise RuntimeError(f"continuous batching failed request {request_id}: {output.error}")
                tokens = output.generated_tokens
                n = next((k for k, t in enumerate(tokens) if t in self.eos_ids), len(tokens))
                hit_eos = n < len(tokens)
                loop_done = output.is_finished()
                text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
                cut, stopped = cut_at_stop(text, stops)
                if stopped or hit_eos or loop_done:
                    outcome.text = cut
                    outcome.completion_tokens = n + int(hit_eos)
                    outcome.finish_reason = "stop" if (stopped or hit_eos or n < sampling.max_tokens) else "length"
                    if cut[len(sent) :]:
                        yield cut[len(sent) :]
                    return
                # A token that ends inside a multi-byte character decodes to U+FFFD until the rest arrives.
                ready = text.rstrip("\ufffd")
                ready = ready[: max(len(sent), len(ready) - hold)]
                if len(ready) > len(sent):
                    yield ready[len(sent) :]
                    sent = ready
        finally:
            if not loop_done and self.manager is not None:  # a stop string, or the client went away: free its place
                self.manager.cancel_request(request_id)
                # A cancelled request gets no final output, so its handler would never be removed.
                with self.manager.output_router._lock:
                    self.manager.output_router.result_handlers.pop(request_id, None)

    def generate_alone(self, request: ChatRequest) -> ChatResponse:
        """The backend's own unbatched `generate` for `request`, with the loop paused and the backend's lock held, so
        that the loop's thread and this one never run the model at once. Blocks until the reply is complete."""
        with self.manager.pause(), self.backend._lock:
            return self.backend.generate([request])[0]

    async def _alone(self, request: ChatRequest, outcome: Outcome) -> AsyncIterator[str]:
        """A sampled request: pause the batch loop and run the backend's own seeded generation."""
        pieces: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        end = object()

        def work() -> None:
            try:
                response = self.generate_alone(request)
                outcome.text = response.text
                outcome.finish_reason = response.finish_reason
                outcome.prompt_tokens = response.usage.prompt_tokens
                outcome.completion_tokens = response.usage.completion_tokens
                loop.call_soon_threadsafe(pieces.put_nowait, response.text)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                loop.call_soon_threadsafe(pieces.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, end)

        threading.Thread(target=work, daemon=True).start()
        while (item := await pieces.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            if item:
                yield item

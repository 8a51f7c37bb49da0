"""transformers in-process backend: batched, left-padded generation through the model's chat template.

Batches are as large as memory allows (selfprompt.hardware.generation_batch_size), rows of similar length
share a batch, and a request that continues one of the previous call (the eval trigger pass: prompt, output,
then the trigger) reuses the keys and values computed for it instead of encoding it again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from selfprompt.errors import ConfigError
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling
from selfprompt.generate.backends.chat_prompt import render_chat_prompt
from selfprompt.generate.backends.cpu_linear import WEIGHT_FIRST_ROWS, use_weight_first_linears
from selfprompt.hardware import Decision, available_memory_bytes, cpu_facts, generation_batch_size, model_decisions
from selfprompt.models import ResolvedModel, load_causal_lm, load_tokenizer, resolve_model
from selfprompt.progress import report_step
from selfprompt.records import Usage


def render_prompt(tokenizer: Any, request: ChatRequest) -> str:
    """The exact prompt text under the tokenizer's own chat template, any prefill rendered as in training."""
    return render_chat_prompt(
        lambda messages, **kw: tokenizer.apply_chat_template(messages, tokenize=False, **kw), request
    )


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cuts = [i for s in stops if (i := text.find(s)) >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def refuse_response_format(request: ChatRequest) -> None:
    # Silently returning unconstrained text to a caller that asked for JSON would turn every
    # reply into a parse failure far from the cause.
    if request.wants_json:
        raise ConfigError(
            "the hf backend cannot constrain output to a JSON schema (response_format); "
            "use --backend llamacpp or an OpenAI-compatible server"
        )


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model: str | ResolvedModel = "default",
        batch_size: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        reuse_prefix: bool = True,
        **_: Any,
    ):
        """Load `model` for batched generation.

        batch_size: rows per batch; None chooses it from the memory left after loading and the model's KV
            cache size per token (selfprompt.hardware.generation_batch_size; recorded in `decisions`).
        reuse_prefix: keep each call's KV cache until the next call, so that a request continuing a previous
            one (the eval trigger pass) encodes only its new tokens.
        Raises ModelNotFoundError for a model that cannot be found."""
        super().__init__()
        import torch

        self.resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # Inference stays fp32 on CPU whatever the CPU: bf16 generation would change greedy outputs
        # between machines with and without native bf16, and eval numbers must not depend on that.
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device == "cuda" else torch.float32)
        self.tokenizer = load_tokenizer(self.resolved)
        self.tokenizer.padding_side = "left"  # decoder-only batching: pad on the left so new tokens line up
        self.model = load_causal_lm(self.resolved, dtype=torch_dtype, device=self.device).eval()
        weight_first = self.device == "cpu" and torch_dtype == torch.float32
        if weight_first:
            use_weight_first_linears(self.model)
        self.memory_budget, memory_source = available_memory_bytes(self.device)
        batch = generation_batch_size(self.model, self.device, batch_size, self.memory_budget, memory_source)
        self.batch_size: int = batch.resolved
        self.reuse_prefix = reuse_prefix
        self._held: list[_HeldRow] = []  # the previous generate call's KV cache, row by row (see _hold)
        where = f"device {self.device}" + ("" if self.device == "cuda" else f", CPU {cpu_facts().describe()}")
        self.decisions = {
            "dtype": Decision(
                "dtype",
                dtype or "auto",
                str(torch_dtype).removeprefix("torch."),
                f"{where}: " + ("set explicitly" if dtype else "bf16 on GPU, fp32 on every CPU"),
            ).as_dict(),
            "batch_size": batch.as_dict(),
            "linear_product": Decision(
                "linear_product",
                "auto",
                f"(W @ x.T).T at {min(WEIGHT_FIRST_ROWS)}-{max(WEIGHT_FIRST_ROWS)} rows"
                if weight_first
                else "nn.Linear",
                "fp32 on the CPU: MKL is slow at nn.Linear's x @ W.T for these rows (bench/results/decode_linears.json)"
                if weight_first
                else "only fp32 CPU inference takes the weight-first product",
            ).as_dict(),
            **model_decisions(self.model),
        }
        self.resolved.content_hash  # the id of what was just loaded, hashed now (remembered after the first time)

    @property
    def model_id(self) -> str:
        return self.resolved.model_id

    @property
    def model_name(self) -> str:
        return self.resolved.name

    def _generate_kwargs(self, sampling: Sampling) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=sampling.stop, tokenizer=self.tokenizer)
        return kwargs

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """Answer each request, in batches of `batch_size` rows; the order of responses is that of `requests`.

        Requests with equal sampling share batches, sorted by prompt length so that little of a batch is
        padding. A request whose prompt starts with the prompt and output of a request of the previous call
        (the trigger pass: the first pass's prompt and output, then the trigger) reuses that call's keys and
        values and encodes only what follows them (see `_held`)."""
        for r in requests:
            refuse_response_format(r)
        ids = [self._prompt_ids(r) for r in requests]
        held, self._held = self._held, []  # the previous call's KV cache: reused now or never
        reuse = [_longest_held_prefix(q, held) for q in ids]
        responses: list[ChatResponse | None] = [None] * len(requests)
        # Requests with equal sampling share a batch; those that reuse a held prefix batch apart, since one
        # row without it would make the whole batch encode from the start.
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.sampling.model_dump_json(), reuse[i] is not None), []).append(i)
        for indices in groups.values():
            indices.sort(key=lambda i: len(ids[i]))  # stable: equal lengths keep their order
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                batch = self._generate_batch(
                    [requests[i] for i in chunk], [ids[i] for i in chunk], [reuse[i] for i in chunk]
                )
                for i, resp in zip(chunk, batch):
                    responses[i] = resp
        return responses  # type: ignore[return-value]

    def _prompt_ids(self, request: ChatRequest) -> list[int]:
        return self.tokenizer(render_prompt(self.tokenizer, request), add_special_tokens=False)["input_ids"]

    def _generate_batch(
        self,
        requests: Sequence[ChatRequest],
        ids: Sequence[list[int]],
        reuse: Sequence[_Reuse | None] | None = None,
    ) -> list[ChatResponse]:
        import torch
        from transformers import StoppingCriteriaList

        sampling = requests[0].sampling
        width = max(len(q) for q in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, q in enumerate(ids):  # left padding: the new tokens of every row line up
            input_ids[row, width - len(q) :] = torch.tensor(q, dtype=torch.long)
            mask[row, width - len(q) :] = 1
        kwargs = self._generate_kwargs(sampling)
        cache = _cache_from_held(ids, reuse, width) if reuse and all(reuse) else None
        if cache is not None:
            kwargs["cache"] = cache
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        # A batch ends all at once, minutes later on a CPU: its decoding steps show on the progress line meanwhile.
        steps = _ReportSteps(width, sampling.max_tokens, len(requests))
        report_step(0, sampling.max_tokens, len(requests))
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                return_dict_in_generate=True,
                stopping_criteria=StoppingCriteriaList([steps]),
                **kwargs,
            )
        seconds = time.perf_counter() - started
        if self.reuse_prefix:
            self._hold(out.sequences, mask, getattr(out, "cache", None), width)
        new_tokens = out.sequences[:, width:]
        responses = []
        for row, row_mask in zip(new_tokens, mask):
            row_ids = row.tolist()
            eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
            n_generated = next((k for k, t in enumerate(row_ids) if t in eos), len(row_ids))
            hit_eos = n_generated < len(row_ids)
            text, stopped = cut_at_stop(
                self.tokenizer.decode(row_ids[:n_generated], skip_special_tokens=True), sampling.stop
            )
            finish = "stop" if (hit_eos or stopped) else "length"
            usage = Usage(prompt_tokens=int(row_mask.sum()), completion_tokens=n_generated + int(hit_eos))
            responses.append(
                ChatResponse(
                    text=text, finish_reason=finish, usage=usage, model=self.model_id, seconds=seconds / len(requests)
                )
            )
        return responses

    def _hold(self, sequences: Any, mask: Any, cache: Any, width: int) -> None:
        """Keep this batch's KV cache for the next call, row by row: the tokens it covers and their keys and
        values (views into the batch's tensors). Only plain full-attention caches (every layer a
        DynamicLayer) are kept, and only while the held caches fit the memory budget."""
        from transformers.cache_utils import DynamicLayer

        layers = getattr(cache, "layers", None)
        if not layers or any(type(layer) is not DynamicLayer or not layer.is_initialized for layer in layers):
            return
        size = sum(2 * layer.keys.numel() * layer.keys.element_size() for layer in layers)
        if size + sum(r.nbytes for r in self._held) > self.memory_budget:
            return
        length = layers[0].keys.shape[-2]  # the last token generated was never fed, so has no KV
        for row in range(sequences.shape[0]):
            first = width - int(mask[row].sum())  # left padding ends here
            self._held.append(
                _HeldRow(
                    ids=sequences[row, first:length].cpu(),
                    kv=[(layer.keys[row, :, first:length], layer.values[row, :, first:length]) for layer in layers],
                    nbytes=size // sequences.shape[0],
                )
            )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Yield text pieces; a stop string is never emitted, not even its first characters."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        refuse_response_format(request)
        prompt = render_prompt(self.tokenizer, request)
        enc = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()  # set when the consumer stops early, so the worker stops too
        kwargs = {
            **enc,
            **self._generate_kwargs(request.sampling),
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(cancel)]),
        }
        worker = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
        stops = request.sampling.stop
        # Hold back as many characters as could be the start of a stop string split across pieces.
        hold = max((len(s) for s in stops), default=1) - 1
        with self._lock:
            worker.start()
            try:
                pending = ""
                for piece in streamer:
                    pending += piece
                    text, stopped = cut_at_stop(pending, stops)
                    if stopped:
                        pending = ""
                        if text:
                            yield text
                        break
                    if len(pending) > hold:
                        ready, pending = pending[: len(pending) - hold], pending[len(pending) - hold :]
                        yield ready
                if pending:
                    yield pending
            finally:
                cancel.set()
                worker.join()


class _ReportSteps:
    """A stopping criterion that never stops: it reports the tokens generated so far to the progress line
    (selfprompt.progress.report_step), at most every REPORT_EVERY_S and at the last step, so a decoding step
    costs a clock read."""

    REPORT_EVERY_S = 0.2

    def __init__(self, prompt_tokens: int, max_new_tokens: int, items: int):
        self.prompt_tokens, self.max_new_tokens, self.items = prompt_tokens, max_new_tokens, items
        self.last = time.monotonic()

    def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        now, generated = time.monotonic(), input_ids.shape[1] - self.prompt_tokens
        if now - self.last >= self.REPORT_EVERY_S or generated >= self.max_new_tokens:
            self.last = now
            report_step(generated, self.max_new_tokens, self.items)
        return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)


class _StopWhenSet:
    """A stopping criterion that ends generation once `event` is set (the stream's consumer went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


@dataclass
class _HeldRow:
    """One row of the previous generate call: the tokens the KV cache covers and, per layer, their keys and
    values ([heads, tokens, head_dim] each)."""

    ids: Any  # 1-D LongTensor on the CPU
    kv: list[tuple[Any, Any]]
    nbytes: int


@dataclass
class _Reuse:
    """A prompt's first `tokens` tokens are those of `row` (a held row): their keys and values are reused."""

    row: _HeldRow
    tokens: int


# Fewer shared tokens than this are not worth a separate batch.
MIN_REUSED_TOKENS = 32


def _longest_held_prefix(ids: list[int], held: Sequence[_HeldRow]) -> _Reuse | None:
    """The held row that shares the longest start with the prompt `ids`, if it shares at least half the prompt
    and MIN_REUSED_TOKENS: a chat template's system prompt alone is shared by every request, and reusing it
    would only split batches. At least the prompt's last token is left to encode (its logits start the
    generation)."""
    import torch

    if not held:
        return None
    q = torch.tensor(ids, dtype=torch.long)
    best: _Reuse | None = None
    for row in held:
        n = min(len(q) - 1, len(row.ids))
        same = (row.ids[:n] == q[:n]).long()
        shared = int(same.cumprod(0).sum()) if n > 0 else 0
        if shared >= max(MIN_REUSED_TOKENS, len(q) // 2) and (best is None or shared > best.tokens):
            best = _Reuse(row, shared)
    return best


def _cache_from_held(ids: Sequence[list[int]], reuse: Sequence[_Reuse | None], width: int) -> Any:
    """A DynamicCache for a left-padded batch of `ids` (`width` columns), filled from the held rows.

    The cache covers the first `width - longest uncached tail` columns of every row: zeros over the left
    padding (masked), then the reused keys and values. Rows whose reused prefix is longer than that re-encode
    a few tokens. None when no column could be reused."""
    import torch
    from transformers import DynamicCache

    tail = max(len(q) - r.tokens for q, r in zip(ids, reuse) if r is not None)
    covered = width - tail
    if covered <= 0:
        return None
    first = reuse[0]
    assert first is not None
    layers = []
    for layer, (k0, _) in enumerate(first.row.kv):
        heads, _, dim = k0.shape
        keys = torch.zeros((len(ids), heads, covered, dim), dtype=k0.dtype, device=k0.device)
        values = torch.zeros_like(keys)
        for row, (q, r) in enumerate(zip(ids, reuse)):
            assert r is not None
            start = width - len(q)  # where the row's tokens begin after left padding
            if covered > start:
                k, v = r.row.kv[layer]
                keys[row, :, start:covered] = k[:, : covered - start]
                values[row, :, start:covered] = v[:, : covered - start]
        layers.append((keys, values))
    return DynamicCache(layers)

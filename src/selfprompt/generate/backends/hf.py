"""transformers in-process backend: batched, left-padded generation through the model's chat template."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from selfprompt.errors import ConfigError
from selfprompt.generate.backends.base import Backend, ChatRequest, ChatResponse, Sampling
from selfprompt.generate.backends.chat_prompt import render_chat_prompt
from selfprompt.hardware import Decision, cpu_facts, model_decisions
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
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        **_: Any,
    ):
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
        self.batch_size = batch_size
        where = f"device {self.device}" + ("" if self.device == "cuda" else f", CPU {cpu_facts().describe()}")
        self.decisions = {
            "dtype": Decision(
                "dtype",
                dtype or "auto",
                str(torch_dtype).removeprefix("torch."),
                f"{where}: " + ("set explicitly" if dtype else "bf16 on GPU, fp32 on every CPU"),
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
        for r in requests:
            refuse_response_format(r)
        responses: list[ChatResponse | None] = [None] * len(requests)
        # Requests with equal sampling share a batch; order of the output follows the input.
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.sampling.model_dump_json(), []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for i, resp in zip(chunk, self._generate_batch([requests[i] for i in chunk])):
                    responses[i] = resp
        return responses  # type: ignore[return-value]

    def _generate_batch(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        import torch
        from transformers import StoppingCriteriaList

        sampling = requests[0].sampling
        prompts = [render_prompt(self.tokenizer, r) for r in requests]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        # A batch ends all at once, minutes later on a CPU: its decoding steps show on the progress line meanwhile.
        steps = _ReportSteps(enc["input_ids"].shape[1], sampling.max_tokens, len(requests))
        report_step(0, sampling.max_tokens, len(requests))
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **enc, **self._generate_kwargs(sampling), stopping_criteria=StoppingCriteriaList([steps])
            )
        seconds = time.perf_counter() - started
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        responses = []
        for row, mask in zip(new_tokens, enc["attention_mask"]):
            ids = row.tolist()
            eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
            n_generated = next((k for k, t in enumerate(ids) if t in eos), len(ids))
            hit_eos = n_generated < len(ids)
            text, stopped = cut_at_stop(
                self.tokenizer.decode(ids[:n_generated], skip_special_tokens=True), sampling.stop
            )
            finish = "stop" if (hit_eos or stopped) else "length"
            usage = Usage(prompt_tokens=int(mask.sum()), completion_tokens=n_generated + int(hit_eos))
            responses.append(
                ChatResponse(
                    text=text, finish_reason=finish, usage=usage, model=self.model_id, seconds=seconds / len(requests)
                )
            )
        return responses

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
